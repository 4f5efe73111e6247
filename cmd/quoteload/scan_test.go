package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// rec is a comparable form of quoteRec for tests.
type rec struct {
	Sym        string
	Fetched    int64
	Seq        int64
	HasF, HasS bool
}

func recs(qs []quoteRec) []rec {
	out := []rec{}
	for _, q := range qs {
		out = append(out, rec{string(q.Symbol), q.FetchedAt, q.Seq, q.HasFetchedAt, q.HasSeq})
	}
	return out
}

func TestScanQuotes(t *testing.T) {
	const full = `{"symbol":"SYN-000001","price":17.8,"prev_close":17.96,"change":-0.16,"change_rate":-0.008909,"volume":1019191,"currency":"USD","trade_time":1795309388333,"fetched_at":1795309388333,"seq":1,"source":"sim","market":"open"}`
	tests := []struct {
		name string
		in   string
		want []rec
	}{
		{"real SSE data line", full, []rec{{"SYN-000001", 1795309388333, 1, true, true}}},
		{"WS frame with several quotes",
			`{"type":"quotes","quotes":[{"symbol":"A","fetched_at":10,"seq":1},{"symbol":"B","fetched_at":11,"seq":2},{"symbol":"C","seq":3,"fetched_at":12}]}`,
			[]rec{{"A", 10, 1, true, true}, {"B", 11, 2, true, true}, {"C", 12, 3, true, true}}},
		{"numbers at end of object",
			`{"type":"quotes","quotes":[{"symbol":"A","fetched_at":1795309388333},{"symbol":"B","seq":42}]}`,
			[]rec{{"A", 1795309388333, 0, true, false}, {"B", 0, 42, false, true}}},
		{"white space everywhere",
			"{ \"symbol\" : \"A\" ,\n\t\"fetched_at\" :\r\n 5 , \"seq\" : 6 }",
			[]rec{{"A", 5, 6, true, true}}},
		{"missing symbol is not a quote", `{"fetched_at":5,"seq":6}`, []rec{}},
		{"missing numbers", `{"symbol":"A","price":1}`, []rec{{"A", 0, 0, false, false}}},
		{"null and string numbers", `{"symbol":"A","fetched_at":null,"seq":"7"}`, []rec{{"A", 0, 0, false, false}}},
		{"symbol not a string", `{"symbol":5,"seq":1}`, []rec{}},
		{"escaped quote in another value does not look like a key",
			`{"name":"x\",\"symbol\":\"EVIL\",\"seq\":99","symbol":"A","seq":1,"fetched_at":2}`,
			[]rec{{"A", 2, 1, true, true}}},
		{"backslash at end of a value", `{"note":"c:\\","symbol":"A","seq":3}`, []rec{{"A", 0, 3, false, true}}},
		{"escaped symbol value is decoded", `{"symbol":"SYN\u002d1","seq":4}`, []rec{{"SYN-1", 0, 4, false, true}}},
		{"escaped key is decoded", `{"\u0073ymbol":"A","se\u0071":4}`, []rec{{"A", 0, 4, false, true}}},
		{"key text inside a string value", `{"message":"\"seq\":5","symbol":"A"}`, []rec{{"A", 0, 0, false, false}}},
		{"nested object members stay with their object",
			`{"symbol":"A","extra":{"seq":99,"fetched_at":1},"seq":1,"fetched_at":2}`,
			[]rec{{"A", 2, 1, true, true}}},
		{"rejections inside subscribed have symbols",
			`{"type":"subscribed","symbols":[],"rejected":[{"symbol":"X!","code":"invalid_symbol","message":"m"}]}`,
			[]rec{{"X!", 0, 0, false, false}}},
		{"braces inside strings", `{"symbol":"A}{","seq":1}`, []rec{{"A}{", 0, 1, false, true}}},
		{"truncated frame drops the open object",
			`{"type":"quotes","quotes":[{"symbol":"A","seq":1},{"symbol":"B","se`,
			[]rec{{"A", 0, 1, false, true}}},
		{"unterminated string", `{"symbol":"A`, []rec{}},
		{"negative and float forms", `[{"symbol":"A","seq":-3,"fetched_at":1.5e3},{"symbol":"B","fetched_at":1.5}]`,
			[]rec{{"A", 1500, -3, true, true}, {"B", 0, 0, false, false}}},
		{"int64 overflow", `{"symbol":"A","seq":99999999999999999999}`, []rec{{"A", 0, 0, false, false}}},
		{"largest int64", `{"symbol":"A","seq":9223372036854775807}`, []rec{{"A", 0, 9223372036854775807, false, true}}},
		{"empty input", ``, []rec{}},
		{"not JSON", `hello: world`, []rec{}},
		{"unbalanced close", `}}{"symbol":"A","seq":1}`, []rec{{"A", 0, 1, false, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := recs(scanQuotes(nil, []byte(tc.in)))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("scanQuotes(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestScanQuotesDeepNesting(t *testing.T) {
	in := strings.Repeat(`{"a":`, scanDepth+4) + `{"symbol":"DEEP","seq":1}` + strings.Repeat(`}`, scanDepth+4)
	in = `[` + in + `,{"symbol":"A","seq":2}]`
	got := recs(scanQuotes(nil, []byte(in)))
	want := []rec{{"A", 0, 2, false, true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v want %+v", got, want)
	}
}

func TestScanQuotesReusesDst(t *testing.T) {
	frame := []byte(`{"type":"quotes","quotes":[{"symbol":"A","fetched_at":1,"seq":1},{"symbol":"B","fetched_at":1,"seq":2}]}`)
	dst := make([]quoteRec, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		dst = scanQuotes(dst[:0], frame)
	})
	if allocs != 0 {
		t.Errorf("scanQuotes allocates %.1f times per frame", allocs)
	}
	if len(dst) != 2 {
		t.Errorf("got %d quotes", len(dst))
	}
}

func TestFrameKind(t *testing.T) {
	for _, tc := range []struct{ in, kind string }{
		{`{"type":"quotes","quotes":[]}`, "quotes"},
		{`{"quotes":[],"type":"quotes"}`, "quotes"},
		{`{"type":"welcome","node":"n","session":"s","limits":{"max_symbols":200}}`, "welcome"},
		{`{"type":"subscribed","symbols":["A"],"rejected":[]}`, "subscribed"},
		{`{"type":"error","code":"bad_request","message":"m"}`, "error"},
		{`not json`, ""},
	} {
		if kind, _ := frameKind([]byte(tc.in)); kind != tc.kind {
			t.Errorf("frameKind(%s) = %q, want %q", tc.in, kind, tc.kind)
		}
	}
	_, cf := frameKind([]byte(`{"type":"subscribed","symbols":["A"],"rejected":[{"symbol":"B","code":"unknown_symbol"}]}`))
	if cf == nil || len(cf.Rejected) != 1 || cf.Rejected[0].Code != "unknown_symbol" {
		t.Errorf("rejections not decoded: %+v", cf)
	}
}

func BenchmarkScanQuotes(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"type":"quotes","quotes":[`)
	for i := range 10 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"symbol":"SYN-%06d","price":17.8,"prev_close":17.96,"change":-0.16,"change_rate":-0.008909,"volume":1019191,"currency":"USD","trade_time":1795309388333,"fetched_at":1795309388333,"seq":%d,"source":"sim","market":"open"}`, i+1, i)
	}
	sb.WriteString(`]}`)
	frame := []byte(sb.String())
	dst := make([]quoteRec, 0, 16)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		dst = scanQuotes(dst[:0], frame)
	}
}
