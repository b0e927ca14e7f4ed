// Command timeprobe feeds raw byte strings to Go's time.Time.UnmarshalJSON
// and reports the outcome, one JSON line per input line.
//
// Input: one JSON string per line, holding the bytes to test as hex.
// Output: one JSON object per input line:
//
//	{"ok":bool,"err":string|null,"fmt":string,"unix":int,"nsec":int,"off":int}
//
// "fmt" is t.Format(time.RFC3339Nano), "off" is the offset from t.Zone().
// On error t is whatever UnmarshalJSON left behind (the zero Time).
// Run with TZ=UTC so the Local zone is UTC.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

type result struct {
	OK   bool    `json:"ok"`
	Err  *string `json:"err"`
	Fmt  string  `json:"fmt"`
	Unix int64   `json:"unix"`
	Nsec int     `json:"nsec"`
	Off  int     `json:"off"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var hx string
		if err := json.Unmarshal(in.Bytes(), &hx); err != nil {
			fmt.Fprintln(os.Stderr, "timeprobe: bad input line:", err)
			os.Exit(2)
		}
		data, err := hex.DecodeString(hx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "timeprobe: bad hex:", err)
			os.Exit(2)
		}
		var t time.Time
		r := result{OK: true}
		if err := t.UnmarshalJSON(data); err != nil {
			r.OK = false
			s := err.Error()
			r.Err = &s
		}
		r.Fmt = t.Format(time.RFC3339Nano)
		r.Unix = t.Unix()
		r.Nsec = t.Nanosecond()
		_, r.Off = t.Zone()
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "timeprobe:", err)
			os.Exit(2)
		}
		// Flush per line so the probe can be driven interactively.
		if err := out.Flush(); err != nil {
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "timeprobe:", err)
		os.Exit(2)
	}
}
