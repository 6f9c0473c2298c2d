module github.com/socklab/socklab/deploy/wireshark

go 1.26.0

replace github.com/socklab/socklab/services/kit => ../../services/kit

require (
	github.com/google/gopacket v1.1.19
	github.com/socklab/socklab/services/kit v0.0.0-00010101000000-000000000000
)

require (
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
