package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

type marshalInput struct {
	TS      int64           `json:"ts"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type marshalError struct {
	Error string `json:"error"`
}

// runMarshal reads {"ts","type","payload"} JSON lines and writes, for each,
// exactly what the seed's AppendCartEvent writes: json.Marshal of a
// cartEventRecord whose Payload is the decoded message, plus "\n". A line
// that cannot be processed yields {"error": "..."} instead (one output line
// per input line, always).
func runMarshal(out *bufio.Writer, in io.Reader) error {
	r := bufio.NewReaderSize(in, 1<<16)
	for {
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if err := marshalOne(out, line); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func marshalOne(out *bufio.Writer, line []byte) error {
	fail := func(msg string) error {
		return writeJSONLine(out, marshalError{Error: msg})
	}
	var in marshalInput
	if err := json.Unmarshal(line, &in); err != nil {
		return fail("input: " + err.Error())
	}
	instance, ok := createMutation(in.Type)
	if !ok {
		return fail(fmt.Sprintf("unknown mutation type: %q", in.Type))
	}
	if in.Payload == nil {
		return fail("payload: missing")
	}
	if err := json.Unmarshal(in.Payload, instance); err != nil {
		return fail("payload: " + err.Error())
	}
	rec := cartEventRecord{
		Timestamp: in.TS,
		Type:      in.Type,
		Payload:   instance,
	}
	lineBytes, err := json.Marshal(rec)
	if err != nil {
		return fail("marshal event: " + err.Error())
	}
	lineBytes = append(lineBytes, '\n')
	_, err = out.Write(lineBytes)
	return err
}
