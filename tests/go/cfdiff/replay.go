package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"cfdiff/messages"
)

type replayLine struct {
	CartID  string  `json:"cart_id"`
	Line    int     `json:"line"`
	Outcome string  `json:"outcome"`
	Type    *string `json:"type"`
	Error   *string `json:"error"`
}

type replayMetrics struct {
	ReplayTotal         int `json:"cart_event_log_replay_total"`
	ReplayFailuresTotal int `json:"cart_event_log_replay_failures_total"`
	MutationErrorsTotal int `json:"cart_event_log_mutation_errors_total"`
	UnknownTypesTotal   int `json:"cart_event_log_unknown_types_total"`
}

type replayCart struct {
	CartID  string        `json:"cart_id"`
	State   *cartState    `json:"state"`
	Metrics replayMetrics `json:"metrics"`
}

// replayState is what `replay --states` prints after a line: the cart's state
// after the first After lines of its file (After 0: the empty cart).
type replayState struct {
	CartID string     `json:"cart_id"`
	After  int        `json:"after"`
	State  *cartState `json:"state"`
}

// stateLines is the --states selection: every line (all), or the listed ones.
type stateLines struct {
	all   bool
	lines map[int]bool
}

func (s *stateLines) has(n int) bool { return s.all || s.lines[n] }

func parseStateLines(text string) (stateLines, error) {
	var s stateLines
	if text == "" {
		return s, nil
	}
	if text == "all" {
		s.all = true
		return s, nil
	}
	s.lines = map[int]bool{}
	for _, part := range strings.Split(text, ",") {
		var n int
		if _, err := fmt.Sscanf(part, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != part {
			return s, fmt.Errorf("replay: --states takes all or line numbers N,M,... (0 = the empty cart), not %q", text)
		}
		s.lines[n] = true
	}
	return s, nil
}

type cartFile struct {
	id   string
	path string
}

func runReplay(out *bufio.Writer, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	mode := fs.String("mode", "go", "go or lenient")
	catalogPath := fs.String("catalog", "", "catalog JSON: {sku: AddItem-shaped object}")
	quiet := fs.Bool("quiet", false, "print nothing per line or cart, only the run's timing")
	statesText := fs.String("states", "", "all, or N,M,...: print the state after those lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	states, err := parseStateLines(*statesText)
	if err != nil {
		return err
	}
	if *mode != "go" && *mode != "lenient" {
		return fmt.Errorf("replay: --mode must be go or lenient, not %q", *mode)
	}
	lenient := *mode == "lenient"

	var catalog map[string]*messages.AddItem
	if *catalogPath != "" {
		data, err := os.ReadFile(*catalogPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &catalog); err != nil {
			return fmt.Errorf("catalog %s: %w", *catalogPath, err)
		}
	}

	carts := make([]cartFile, 0, fs.NArg())
	for _, p := range fs.Args() {
		carts = append(carts, cartFile{id: strings.TrimSuffix(filepath.Base(p), ".events.log"), path: p})
	}
	sort.SliceStable(carts, func(i, j int) bool { return carts[i].id < carts[j].id })

	start := time.Now()
	lines := 0
	for _, cf := range carts {
		n, err := replayCartFile(out, cf, lenient, catalog, *quiet, states)
		if err != nil {
			return err
		}
		lines += n
	}
	if *quiet {
		return writeJSONLine(out, replayTiming{Carts: len(carts), Lines: lines,
			Seconds: time.Since(start).Seconds()})
	}
	return nil
}

// replayTiming is what `replay --quiet` prints: the benchmarks' Go anchor
// (the seed's reader loop and the handlers over the files, no output).
type replayTiming struct {
	Carts   int     `json:"carts"`
	Lines   int     `json:"lines"`
	Seconds float64 `json:"seconds"`
}

// seedEnvelopeType is the type of the seed's anonymous envelope struct.
var seedEnvelopeType = reflect.TypeOf(struct {
	Timestamp time.Time       `json:"ts"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
}{})

// decodeEnvelope is the seed's envelope json.Unmarshal, with the seed's
// anonymous struct (fresh per line); in lenient mode ts is a lenientTime.
func decodeEnvelope(line []byte, lenient bool) (time.Time, string, json.RawMessage, error) {
	if lenient {
		var raw struct {
			Timestamp lenientTime     `json:"ts"`
			Type      string          `json:"type"`
			Payload   json.RawMessage `json:"payload"`
		}
		err := json.Unmarshal(line, &raw)
		// A top-level non-object names the envelope's Go type in its error
		// text; report the seed's type, so that both modes read alike.
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Type == reflect.TypeOf(raw) {
			ute.Type = seedEnvelopeType
		}
		return raw.Timestamp.T, raw.Type, raw.Payload, err
	}
	var raw struct {
		Timestamp time.Time       `json:"ts"`
		Type      string          `json:"type"`
		Payload   json.RawMessage `json:"payload"`
	}
	err := json.Unmarshal(line, &raw)
	return raw.Timestamp, raw.Type, raw.Payload, err
}

// replayCartFile replays one cart's file and returns its physical lines
// (quiet: without printing anything; states: the cart's state after the
// selected lines, each after its line's record).
func replayCartFile(out *bufio.Writer, cf cartFile, lenient bool, catalog map[string]*messages.AddItem, quiet bool, states stateLines) (int, error) {
	data, err := os.ReadFile(cf.path)
	if err != nil {
		return 0, err
	}
	cart := newCart(cf.id)
	var metrics replayMetrics
	physical := 0

	emitState := func(after int) error {
		if quiet || !states.has(after) {
			return nil
		}
		return writeJSONLine(out, replayState{CartID: cf.id, After: after, State: cart})
	}
	emit := func(line int, outcome string, typ *string, msg *string) error {
		physical++
		if quiet {
			return nil
		}
		if err := writeJSONLine(out, replayLine{CartID: cf.id, Line: line, Outcome: outcome, Type: typ, Error: msg}); err != nil {
			return err
		}
		return emitState(line)
	}
	if err := emitState(0); err != nil {
		return 0, err
	}

	scanner := bufio.NewScanner(bytes.NewReader(data))
	buf := make([]byte, 0, 64*1024)
	if lenient {
		scanner.Buffer(buf, 1<<31-1)
	} else {
		const maxLine = 256 * 1024
		scanner.Buffer(buf, maxLine)
	}

	pos := 0 // offset in data where the next token starts
	n := 0
	for scanner.Scan() {
		n++
		line := scanner.Bytes()
		// Track consumed bytes: the token ends at the next '\n' (or EOF).
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			if want := bytes.TrimSuffix(data[pos:pos+i], []byte("\r")); !bytes.Equal(want, line) {
				return 0, fmt.Errorf("%s: internal error: token %d does not match the file bytes", cf.path, n)
			}
			pos += i + 1
		} else {
			pos = len(data)
		}

		ts, typ, payload, err := decodeEnvelope(line, lenient)
		if err != nil {
			metrics.ReplayFailuresTotal++
			if err := emit(n, "malformed", nil, strPtr(err.Error())); err != nil {
				return 0, err
			}
			continue
		}
		instance, ok := createMutation(typ)
		if !ok {
			metrics.ReplayFailuresTotal++
			if err := emit(n, "unknown_type", strPtr(typ), strPtr(fmt.Sprintf("unknown mutation type: %q", typ))); err != nil {
				return 0, err
			}
			continue
		}
		if err := json.Unmarshal(payload, instance); err != nil {
			metrics.MutationErrorsTotal++
			if err := emit(n, "payload_error", strPtr(typ), strPtr(err.Error())); err != nil {
				return 0, err
			}
			continue
		}
		if applyErr := cart.apply(instance, catalog); applyErr != nil {
			metrics.MutationErrorsTotal++
			if err := emit(n, "apply_error", strPtr(typ), strPtr(applyErr.Error())); err != nil {
				return 0, err
			}
			continue
		}
		cart.setLastChange(ts)
		if err := emit(n, "applied", strPtr(typ), nil); err != nil {
			return 0, err
		}
	}
	if serr := scanner.Err(); serr != nil {
		metrics.ReplayFailuresTotal++
		if !errors.Is(serr, bufio.ErrTooLong) {
			// Cannot happen with a bytes.Reader; reported the same way.
			fmt.Fprintf(os.Stderr, "cfdiff: %s: unexpected scanner error: %v\n", cf.path, serr)
		}
		stopped := n + 1
		if err := emit(stopped, "too_long", nil, strPtr(fmt.Errorf("scanner error: %w", serr).Error())); err != nil {
			return 0, err
		}
		rest := countLines(data[pos:])
		for k := 1; k < rest; k++ {
			msg := fmt.Sprintf("not reached: the scanner stopped at line %d", stopped)
			if err := emit(stopped+k, "not_reached", nil, &msg); err != nil {
				return 0, err
			}
		}
	} else {
		metrics.ReplayTotal++
	}
	if quiet {
		return physical, nil
	}
	return physical, writeJSONLine(out, replayCart{CartID: cf.id, State: cart, Metrics: metrics})
}

// countLines counts physical lines: one per '\n', plus a final non-empty
// fragment without '\n'.
func countLines(b []byte) int {
	c := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		c++
	}
	return c
}
