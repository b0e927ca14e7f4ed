package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"time"
)

type envelopeLine struct {
	File       string  `json:"file"`
	Line       int     `json:"line"`
	OK         bool    `json:"ok"`
	Error      *string `json:"error"`
	TS         string  `json:"ts"`
	TSZero     bool    `json:"ts_zero"`
	Type       string  `json:"type"`
	PayloadB64 *string `json:"payload_b64"`
}

type envelopeEnd struct {
	File         string  `json:"file"`
	End          bool    `json:"end"`
	Lines        int     `json:"lines"`
	ScannerError *string `json:"scanner_error"`
}

// runEnvelope runs the seed's reader loop (ReplayCartEvents, up to and
// including the envelope json.Unmarshal) over each file and reports what the
// envelope struct holds after every token.
func runEnvelope(out *bufio.Writer, files []string) error {
	for _, path := range files {
		if err := envelopeFile(out, path); err != nil {
			return err
		}
	}
	return nil
}

func envelopeFile(out *bufio.Writer, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()

	scanner := bufio.NewScanner(fh)
	// Increase buffer in case of large payloads
	const maxLine = 256 * 1024
	buf := make([]byte, 0, 64*1024)
	scanner.Buffer(buf, maxLine)

	n := 0
	for scanner.Scan() {
		n++
		line := scanner.Bytes()
		var raw struct {
			Timestamp time.Time       `json:"ts"`
			Type      string          `json:"type"`
			Payload   json.RawMessage `json:"payload"`
		}
		rec := envelopeLine{File: path, Line: n, OK: true}
		if err := json.Unmarshal(line, &raw); err != nil {
			rec.OK = false
			rec.Error = strPtr(err.Error())
		}
		rec.TS = raw.Timestamp.Format(time.RFC3339Nano)
		rec.TSZero = raw.Timestamp.IsZero()
		rec.Type = raw.Type
		if raw.Payload != nil {
			rec.PayloadB64 = strPtr(base64.StdEncoding.EncodeToString(raw.Payload))
		}
		if err := writeJSONLine(out, rec); err != nil {
			return err
		}
	}
	end := envelopeEnd{File: path, End: true, Lines: n}
	if serr := scanner.Err(); serr != nil {
		end.ScannerError = strPtr(serr.Error())
	}
	return writeJSONLine(out, end)
}
