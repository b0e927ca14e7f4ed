package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"unicode"
)

// foldRune is encoding/json's own (Go 1.25 fold.go): the smallest rune of r's
// simple case-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// runFold prints every non-ASCII rune whose encoding/json key folding is an
// ASCII letter: "%04x %c" (the letter upper-cased, as foldName writes it).
// Each one is confirmed by a real json.Unmarshal: a key made of that rune
// alone must fill a field tagged with the letter.
func runFold(out *bufio.Writer) error {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if 0xD800 <= r && r <= 0xDFFF {
			continue
		}
		f := foldRune(r)
		if f >= 'a' && f <= 'z' {
			f -= 'a' - 'A'
		}
		if f < 'A' || f > 'Z' {
			continue
		}
		if !confirmFold(r, f) {
			return fmt.Errorf("foldRune(%U) = %c but json.Unmarshal disagrees", r, f)
		}
		if _, err := fmt.Fprintf(out, "%04x %c\n", r, f); err != nil {
			return err
		}
	}
	return nil
}

func confirmFold(r, letter rune) bool {
	key, _ := json.Marshal(string(r))
	data := []byte(`{` + string(key) + `:1}`)
	// a one-field struct whose json name is the lower-case letter
	switch letter {
	case 'K':
		var s struct {
			X int `json:"k"`
		}
		return json.Unmarshal(data, &s) == nil && s.X == 1
	case 'S':
		var s struct {
			X int `json:"s"`
		}
		return json.Unmarshal(data, &s) == nil && s.X == 1
	}
	return false // a letter not seen before: make the caller look
}
