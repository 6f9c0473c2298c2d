package netserve

// SetFreeOSMemory replaces the call that hands memory back, for a test,
// and returns a function that restores it.
func SetFreeOSMemory(f func()) (restore func()) {
	old := freeOSMemory
	freeOSMemory = f
	return func() { freeOSMemory = old }
}
