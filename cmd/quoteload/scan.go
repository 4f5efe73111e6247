package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// quoteRec is what the hot path needs of one pushed quote.
type quoteRec struct {
	// Symbol aliases the scanned buffer (or, for a symbol written with
	// JSON escapes, a small decoded copy); it is valid until the buffer is
	// reused.
	Symbol       []byte
	FetchedAt    int64 // Unix ms
	Seq          int64
	HasFetchedAt bool
	HasSeq       bool
}

// scanDepth is how deep scanQuotes tracks objects; members of deeper
// objects are ignored (their braces are still balanced).
const scanDepth = 16

// scanQuotes appends to dst one quoteRec for every JSON object in b that
// has a string member "symbol", in the order the objects close, and returns
// dst. It reads only "symbol", "fetched_at" and "seq" and skips everything
// else without decoding it: strings are skipped whole, escapes included, so
// text inside a string never looks like a key. It does not validate the
// JSON; an object left open at the end of b (a truncated frame) yields
// nothing. Number members that are absent, null, strings or out of range
// leave HasFetchedAt / HasSeq false.
func scanQuotes(dst []quoteRec, b []byte) []quoteRec {
	type obj struct {
		sym                []byte
		fetched, seq       int64
		hasSym, hasFetched bool
		hasSeq             bool
	}
	var stack [scanDepth]obj
	depth := 0
	for i := 0; i < len(b); {
		switch b[i] {
		case '"':
			start := i + 1
			end, esc := skipString(b, start)
			if end < 0 {
				return dst
			}
			i = end + 1
			j := skipSpace(b, i)
			if j >= len(b) || b[j] != ':' {
				continue // a string value
			}
			i = j + 1
			if depth == 0 || depth > scanDepth {
				continue
			}
			key := b[start:end]
			if esc {
				key = unescapeJSON(b[start-1 : end+1])
			}
			o := &stack[depth-1]
			switch string(key) {
			case "symbol":
				j = skipSpace(b, i)
				if j < len(b) && b[j] == '"' {
					vend, vesc := skipString(b, j+1)
					if vend < 0 {
						return dst
					}
					v := b[j+1 : vend]
					if vesc {
						v = unescapeJSON(b[j : vend+1])
					}
					o.sym, o.hasSym = v, v != nil
					i = vend + 1
				}
			case "fetched_at":
				var next int
				o.fetched, o.hasFetched, next = parseJSONInt(b, skipSpace(b, i))
				i = max(i, next)
			case "seq":
				var next int
				o.seq, o.hasSeq, next = parseJSONInt(b, skipSpace(b, i))
				i = max(i, next)
			}
		case '{':
			depth++
			if depth <= scanDepth {
				stack[depth-1] = obj{}
			}
			i++
		case '}':
			if depth > 0 {
				if depth <= scanDepth {
					if o := &stack[depth-1]; o.hasSym {
						dst = append(dst, quoteRec{
							Symbol: o.sym, FetchedAt: o.fetched, Seq: o.seq,
							HasFetchedAt: o.hasFetched, HasSeq: o.hasSeq,
						})
					}
				}
				depth--
			}
			i++
		default:
			// Jump to the next byte that matters.
			k := indexStructural(b[i+1:])
			if k < 0 {
				return dst
			}
			i += 1 + k
		}
	}
	return dst
}

// indexStructural returns the index of the first '"', '{' or '}' in b, or -1.
func indexStructural(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '{' || c == '}' {
			return i
		}
	}
	return -1
}

// skipString returns the index of the quote closing the string whose first
// content byte is at start, and whether the string holds a backslash; -1
// when the string is not closed.
func skipString(b []byte, start int) (end int, esc bool) {
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, esc
		case '\\':
			esc = true
			i++ // skip the escaped byte
		}
	}
	return -1, esc
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// unescapeJSON decodes a quoted JSON string (quotes included); nil when it
// is not valid. Only used for strings that contain escapes: rare.
func unescapeJSON(quoted []byte) []byte {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return nil
	}
	return []byte(s)
}

// parseJSONInt parses the JSON number at b[i:]. It returns the value, whether
// it is an integer that fits an int64 (a number written with a fraction or
// exponent counts when its value is integral), and the index after the
// number (i itself when there is no number there, e.g. null or a string).
func parseJSONInt(b []byte, i int) (v int64, ok bool, next int) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	digits := j
	var u uint64
	overflow := false
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		d := uint64(b[j] - '0')
		if u > (math.MaxInt64-d)/10 {
			overflow = true
		}
		u = u*10 + d
		j++
	}
	if j == digits {
		return 0, false, i
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		f, err := strconv.ParseFloat(string(b[i:j]), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= math.MaxInt64 {
			return 0, false, j
		}
		return int64(f), true, j
	}
	if overflow {
		return 0, false, j
	}
	if b[i] == '-' {
		return -int64(u), true, j
	}
	return int64(u), true, j
}

// quotesHead is how the server starts every quotes frame; frames that start
// this way skip the generic decode.
var quotesHead = []byte(`{"type":"quotes",`)

// controlFrame is the generic decode of a non-quotes WebSocket frame.
type controlFrame struct {
	Type     string          `json:"type"`
	Code     string          `json:"code"`
	Symbols  []string        `json:"symbols"`
	Rejected []rejection     `json:"rejected"`
	Quotes   json.RawMessage `json:"quotes"`
}

// rejection is one refused symbol inside a subscribed frame.
type rejection struct {
	Symbol string `json:"symbol"`
	Code   string `json:"code"`
}

// frameKind classifies a WebSocket text frame: "quotes" for the fast path
// (no decode at all), else the decoded frame's type ("" when b is not a JSON
// object).
func frameKind(b []byte) (kind string, cf *controlFrame) {
	if bytes.HasPrefix(b, quotesHead) {
		return "quotes", nil
	}
	if bytes.HasPrefix(b, candleHead) {
		return "candle", nil
	}
	cf = new(controlFrame)
	if json.Unmarshal(b, cf) != nil {
		return "", nil
	}
	return cf.Type, cf
}
