package main

import (
	"bufio"
	"fmt"
	"unicode"
)

// runFold prints every non-ASCII rune whose encoding/json key folding
// (unicode.ToUpper(unicode.ToLower(r)), as in encoding/json's
// appendFoldedName) is an ASCII letter: "%04x %c".
func runFold(out *bufio.Writer) error {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if 0xD800 <= r && r <= 0xDFFF {
			continue
		}
		f := unicode.ToUpper(unicode.ToLower(r))
		if ('A' <= f && f <= 'Z') || ('a' <= f && f <= 'z') {
			if _, err := fmt.Fprintf(out, "%04x %c\n", r, f); err != nil {
				return err
			}
		}
	}
	return nil
}
