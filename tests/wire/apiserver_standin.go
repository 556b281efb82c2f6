// A stand-in for kube-apiserver's TLS serving, standard library only (Go 1.19, Debian golang-go).
//
// It copies what k8s.io/apiserver does (see /work/shared/reference/tls-wire.md for the sources):
// secure_serving.go: MinVersion TLS 1.2, ClientAuth = RequestClientCert only when a client CA is configured, and
// GetConfigForClient answering with the current CA pool; the pool is the union of --client-ca-file and
// --requestheader-client-ca-file, client CA first (union_content.go); dynamic_cafile_content.go re-reads the files
// and refuses an empty one (keeps the last good bundle). It is built as a binary named kube-apiserver and run with
// the apiserver's own flags, so the check finds it as it finds the real one.
//
// Test-only flags: --reload-interval (how often the CA files are re-read), --plain-http (serve HTTP, not TLS, on the
// secure port), --hang (accept connections and never answer), --handshake-log (a file that gets one line per failed
// TLS handshake, as http.Server's ErrorLog writes "http: TLS handshake error ..."), STANDIN_TLS13_ONLY=1 in the environment (TLS 1.3 only without the flag), --no-client-auth (a process
// whose client authentication is off whatever its flags say: it reads no CA file and asks for no certificate),
// --connections=N (N loopback TCP connections held open, both ends: 2N socket fds and one more listening socket, as a
// busy apiserver holds its clients' connections), opened after the secure listener or, with --connections-first,
// before it (the listener then has a high fd number).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type caPool struct {
	mu    sync.Mutex
	files []string
	last  [][]byte
	pool  *x509.CertPool
}

func (p *caPool) reload() {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := p.last == nil
	for i, name := range p.files {
		data, err := os.ReadFile(name)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue // like dynamic_cafile_content.go: keep the last good content
		}
		if p.last == nil {
			p.last = make([][]byte, len(p.files))
		}
		if !bytes.Equal(p.last[i], data) {
			p.last[i] = data
			changed = true
		}
	}
	if !changed {
		return
	}
	pool := x509.NewCertPool()
	for _, data := range p.last {
		pool.AppendCertsFromPEM(data)
	}
	p.pool = pool
}

func (p *caPool) current() *x509.CertPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pool
}

type lineCounter struct {
	mu   sync.Mutex
	path string
}

func (w *lineCounter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.path == "" {
		return os.Stderr.Write(b)
	}
	f, err := os.OpenFile(w.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Write(b)
}

func main() {
	flags := flag.NewFlagSet("kube-apiserver", flag.ContinueOnError)
	securePort := flags.Int("secure-port", 6443, "")
	bindAddress := flags.String("bind-address", "0.0.0.0", "")
	clientCA := flags.String("client-ca-file", "", "")
	requestHeaderCA := flags.String("requestheader-client-ca-file", "", "")
	certFile := flags.String("tls-cert-file", "", "")
	keyFile := flags.String("tls-private-key-file", "", "")
	minVersion := flags.String("tls-min-version", "VersionTLS12", "")
	reload := flags.Duration("reload-interval", time.Minute, "")
	plainHTTP := flags.Bool("plain-http", false, "")
	hang := flags.Bool("hang", false, "")
	handshakeLog := flags.String("handshake-log", "", "")
	noClientAuth := flags.Bool("no-client-auth", false, "")
	connections := flags.Int("connections", 0, "")
	connectionsFirst := flags.Bool("connections-first", false, "")
	flags.String("authorization-mode", "", "") // accepted and ignored, as other apiserver flags in tests
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	errorLog := log.New(&lineCounter{path: *handshakeLog}, "", 0)
	if *connectionsFirst {
		heldConnections = holdConnections(*connections)
	}
	address := net.JoinHostPort(*bindAddress, strconv.Itoa(*securePort))
	listener, err := net.Listen("tcp", address)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !*connectionsFirst {
		heldConnections = holdConnections(*connections)
	}
	fmt.Println("listening", listener.Addr().String())
	os.Stdout.Sync()
	if *hang {
		var held []net.Conn
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			held = append(held, conn) // never read, never answered, never closed
		}
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	server := &http.Server{Handler: handler, ErrorLog: errorLog, ReadHeaderTimeout: 10 * time.Second}
	if *plainHTTP {
		server.Serve(listener)
		return
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	if *minVersion == "VersionTLS13" || os.Getenv("STANDIN_TLS13_ONLY") == "1" { // as from a file the check does not read
		base.MinVersion = tls.VersionTLS13
	}
	var files []string
	for _, name := range []string{*clientCA, *requestHeaderCA} {
		if name != "" {
			files = append(files, name)
		}
	}
	cas := &caPool{files: files}
	if len(files) > 0 && !*noClientAuth {
		cas.reload()
		base.ClientAuth = tls.RequestClientCert
		go func() {
			for range time.Tick(*reload) {
				cas.reload()
			}
		}()
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		config := base.Clone()
		config.GetConfigForClient = nil
		if len(files) > 0 && !*noClientAuth {
			config.ClientCAs = cas.current()
		}
		return config, nil
	}
	server.TLSConfig = base
	server.Serve(tls.NewListener(listener, base))
}

// heldConnections stay reachable: a net.Conn the garbage collector finds unreachable has its fd closed.
var heldConnections []net.Conn

// holdConnections opens n loopback TCP connections to a plain listener of its own and keeps both ends open.
func holdConnections(n int) []net.Conn {
	if n == 0 {
		return nil
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var held []net.Conn
	for i := 0; i < n; i++ {
		client, err := net.Dial("tcp", plain.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		server, err := plain.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		held = append(held, client, server)
	}
	return held
}
