package wireshark

//go:generate go run ./internal/wsports
