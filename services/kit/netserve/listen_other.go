//go:build !unix

package netserve

// isAddrInUse says yes where the error cannot be told apart: another try
// costs little.
func isAddrInUse(error) bool { return true }
