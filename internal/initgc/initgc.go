// Package initgc keeps the garbage collector off while the program's
// packages initialise, and lets main turn it back on.
//
// The SDKs imgsign links (sigstore-go and Rekor's models, the four cloud KMS
// providers, gRPC, CEL, client-go) allocate about 4 MB in their package
// initialisers, mostly regular expressions and protobuf descriptors that
// stay live. The runtime starts its first collection at 4 MB of heap
// (GOGC=100), so every run paid for a GC cycle during initialisation that
// freed little: about 1.5 ms of CPU of the ~13 ms an `imgsign version` took.
//
// Import it only from a main package and call Resume first thing in main.
// Go initialises packages in dependency order and, among those ready, by
// import path, so this package's init runs as soon as runtime/debug is
// ready: before the SDKs that allocate most (about 1.3 MB is allocated
// before it, below the first collection's trigger). A program that imports
// it and never calls Resume runs without a collector: never import it from a
// library or a test.
package initgc

import (
	"runtime"
	"runtime/debug"
)

// percent is GOGC as the runtime read it from the environment (100 unless
// set), restored by Resume.
var percent = debug.SetGCPercent(-1)

// Resume turns the collector back on. Until the first collection completes
// it runs at twice the GOGC the process started with, which gives the
// program after initialisation the runway the runtime gives a program that
// starts with an empty heap (the first collection at GOGC% of 8 MB instead
// of 4 MB); from then on it runs at that GOGC. GOGC=off stays off. Call it
// once, first thing in main.
func Resume() {
	if percent <= 0 {
		debug.SetGCPercent(percent)
		return
	}
	debug.SetGCPercent(2 * percent)
	// The cleanup runs after the first collection that finds the sentinel
	// unreachable, which is the first collection.
	runtime.AddCleanup(new([64]byte), func(p int) { debug.SetGCPercent(p) }, percent)
}
