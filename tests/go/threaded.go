// A stand-in for a Go apiserver's threads: it ignores its arguments and keeps eight goroutines locked to threads of
// their own (beside the runtime's), so that /proc/<pid>/task holds at least nine threads, every one of which
// /proc/<tid> resolves although /proc never lists it. tests/test_discovery.py runs it named kube-apiserver.
package main

import (
	"os"
	"runtime"
	"time"
)

func main() {
	for i := 0; i < 8; i++ {
		go func() {
			runtime.LockOSThread()
			for {
				time.Sleep(time.Hour)
			}
		}()
	}
	os.Stdout.Write([]byte("ready\n"))
	for {
		time.Sleep(time.Hour)
	}
}
