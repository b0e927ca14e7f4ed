// promservice runs the seed's AppendCartEvent and ReplayCartEvents (event_log.go, unchanged)
// with their promauto counters behind a real /metrics endpoint, driven by a script, so that a
// real Prometheus can scrape what the service exports while it writes and replays a corpus.
//
//	promservice -listen 127.0.0.1:PORT -dir DATA -script SCRIPT.jsonl
//
// SCRIPT.jsonl holds one operation per line, run in order:
//
//	{"op":"append","cart":"c01","type":"AddItem","payload":{...}}  AppendCartEvent
//	{"op":"replay","cart":"c01"}                                   ReplayCartEvents
//	{"op":"sleep","ms":1200}
//	{"op":"torn","cart":"c07","type":"AddItem","payload":{...},"bytes":20}
//	    writes the first bytes of that event's line as a crash mid-write leaves it, then exits
//	    at once (status 3): nothing counted, nothing more scraped
//
// After the last operation it prints "idle" and serves /metrics until killed. Each finished
// operation prints one line on stdout ("append c01", "replay c01 <error or ok>", ...).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CartId is the cart's id: the log file is <id>.events.log.
type CartId string

func (c CartId) String() string { return string(c) }

// CartGrain stands in for the cart actor's grain: replay only sets lastChange on it.
type CartGrain struct {
	lastChange time.Time
}

// AddVoucher is a mutation a newer writer appends that this reader's registry does not know.
type AddVoucher struct {
	Code  string `json:"code,omitempty"`
	Value int64  `json:"value,omitempty"`
}

type registry struct{}

func (registry) Create(typeName string) (interface{}, bool) {
	f, ok := eventTypeFactories[typeName]
	if !ok {
		return nil, false
	}
	return f(), true
}

func (registry) Apply(grain interface{}, mutation interface{}) error { return nil }

func newMutation(typeName string) (interface{}, error) {
	if typeName == "AddVoucher" {
		return &AddVoucher{}, nil
	}
	f, ok := eventTypeFactories[typeName]
	if !ok {
		return nil, fmt.Errorf("no message type %q", typeName)
	}
	return f(), nil
}

type operation struct {
	Op      string          `json:"op"`
	Cart    string          `json:"cart"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Bytes   int             `json:"bytes"`
	Ms      int             `json:"ms"`
}

func mutationOf(o operation) interface{} {
	m, err := newMutation(o.Type)
	if err != nil {
		fail(err)
	}
	if len(o.Payload) > 0 {
		if err := json.Unmarshal(o.Payload, m); err != nil {
			fail(err)
		}
	}
	return m
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "promservice:", err)
	os.Exit(1)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of /metrics")
	dir := flag.String("dir", "data", "directory of the event logs")
	script := flag.String("script", "", "operations, one JSON object per line")
	flag.Parse()
	eventLogDir = *dir

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	go http.Serve(ln, mux)
	fmt.Println("listening", ln.Addr().String())

	fh, err := os.Open(*script)
	if err != nil {
		fail(err)
	}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
	for sc.Scan() {
		var o operation
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			fail(err)
		}
		switch o.Op {
		case "append":
			if err := AppendCartEvent(CartId(o.Cart), mutationOf(o)); err != nil {
				fail(err)
			}
			fmt.Println("append", o.Cart)
		case "replay":
			err := ReplayCartEvents(&CartGrain{}, CartId(o.Cart), registry{})
			result := "ok"
			if err != nil {
				result = err.Error()
			}
			fmt.Println("replay", o.Cart, result)
		case "sleep":
			time.Sleep(time.Duration(o.Ms) * time.Millisecond)
		case "torn":
			m := mutationOf(o)
			line, err := json.Marshal(cartEventRecord{Timestamp: time.Now().Unix(), Type: mutationTypeName(m), Payload: m})
			if err != nil {
				fail(err)
			}
			out, err := os.OpenFile(EventLogPath(CartId(o.Cart)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0644)
			if err != nil {
				fail(err)
			}
			out.Write(line[:o.Bytes])
			out.Close()
			fmt.Println("torn", o.Cart, o.Bytes)
			os.Exit(3)
		default:
			fail(fmt.Errorf("unknown op %q", o.Op))
		}
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}
	fmt.Println("idle")
	select {}
}
