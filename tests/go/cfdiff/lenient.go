package main

import (
	"errors"
	"math/big"
	"strings"
	"time"
)

// lenientTime is the envelope's ts in lenient mode: a JSON number is Unix
// seconds (integer, fractional or with an exponent), as time.Unix(sec, nsec)
// takes them: any sec that fits in an int64, the fraction floored to the
// nanosecond, computed exactly and held in UTC; anything else is handed to
// time.Time.UnmarshalJSON unchanged (so null leaves the value as it is,
// strings are parsed as Go parses them, other values fail as Go fails).
type lenientTime struct {
	T time.Time
}

var errTSRange = errors.New("ts: number out of range")

func (l *lenientTime) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && (data[0] == '-' || ('0' <= data[0] && data[0] <= '9')) {
		sec, nsec, ok := unixFromJSONNumber(string(data))
		if !ok {
			return errTSRange
		}
		l.T = time.Unix(sec, nsec).UTC()
		return nil
	}
	return l.T.UnmarshalJSON(data)
}

var (
	bigTen    = big.NewInt(10)
	bigZero   = big.NewInt(0)
	bigOne    = big.NewInt(1)
	bigNsPerS = big.NewInt(1_000_000_000)
)

// unixFromJSONNumber returns (sec, nsec) with sec*1e9 + nsec = floor(lit * 1e9)
// and 0 <= nsec < 1e9, for a JSON number literal lit (already validated by the
// JSON decoder), and false when sec does not fit in an int64. Exact: no float
// arithmetic.
func unixFromJSONNumber(lit string) (int64, int64, bool) {
	s := lit
	neg := false
	if strings.HasPrefix(s, "-") {
		neg = true
		s = s[1:]
	}
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, 0, true // zero, whatever the exponent and sign
	}
	m, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return 0, 0, false
	}
	// value = m * 10^(e - len(frac)); value*1e9 = m * 10^k.
	k := new(big.Int)
	if exp != "" {
		if _, ok := k.SetString(exp, 10); !ok { // accepts a leading + or -
			return 0, 0, false
		}
	}
	k.Sub(k, big.NewInt(int64(len(frac))))
	k.Add(k, big.NewInt(9))

	var ns *big.Int // floor(value * 1e9)
	if k.Sign() >= 0 {
		if k.Cmp(big.NewInt(40)) >= 0 { // |value*1e9| >= 1e40: sec is past int64
			return 0, 0, false
		}
		ns = new(big.Int).Mul(m, new(big.Int).Exp(bigTen, k, nil))
		if neg {
			ns.Neg(ns)
		}
	} else {
		kk := new(big.Int).Neg(k)
		if kk.Cmp(big.NewInt(int64(len(digits)))) > 0 {
			// 0 < |value*1e9| < 1
			if neg {
				return -1, 1_000_000_000 - 1, true
			}
			return 0, 0, true
		}
		d := new(big.Int).Exp(bigTen, kk, nil)
		q, rem := new(big.Int).QuoRem(m, d, new(big.Int))
		if neg {
			q.Neg(q)
			if rem.Cmp(bigZero) != 0 {
				q.Sub(q, bigOne)
			}
		}
		ns = q
	}
	sec, nsec := new(big.Int).DivMod(ns, bigNsPerS, new(big.Int)) // Euclidean: nsec >= 0
	if !sec.IsInt64() {
		return 0, 0, false
	}
	return sec.Int64(), nsec.Int64(), true
}
