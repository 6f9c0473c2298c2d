package wireshark

//go:generate go run ./cmd/wsports
