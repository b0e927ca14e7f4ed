// Command cfdiff is the Go reference for the differential tests of the
// Python package cartforensics. It reproduces, with the real Go standard
// library, what the seed service (seed/event_log.go) does when it writes and
// replays cart event logs, and the cart model of docs/model.md.
//
// Usage:
//
//	cfdiff envelope FILE...
//	cfdiff replay [--mode go|lenient] [--catalog catalog.json] [--quiet] [--states all|N,M,...] FILE...
//	cfdiff marshal < records.jsonl
//	cfdiff fold
//
// See ../README.md for the output formats.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

const usage = `usage:
  cfdiff envelope FILE...
  cfdiff replay [--mode go|lenient] [--catalog catalog.json] [--quiet] [--states all|N,M,...] FILE...
  cfdiff marshal   (JSON lines on stdin)
  cfdiff fold
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var err error
	switch os.Args[1] {
	case "envelope":
		err = runEnvelope(out, os.Args[2:])
	case "replay":
		err = runReplay(out, os.Args[2:])
	case "marshal":
		err = runMarshal(out, os.Stdin)
	case "fold":
		err = runFold(out)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "cfdiff: unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cfdiff:", err)
		os.Exit(1)
	}
}

// writeJSONLine writes json.Marshal(v) and a newline.
func writeJSONLine(w *bufio.Writer, v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func strPtr(s string) *string { return &s }
