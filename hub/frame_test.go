package hub_test

import (
	"encoding/json"
	"errors"
	"testing"

	"quotehub"
	"quotehub/hub"
)

func TestDecodeRequest(t *testing.T) {
	ok := []struct {
		frame, op, id string
		symbols       int
	}{
		{`{"op":"subscribe","id":"r1","symbols":["KRW-BTC","AAPL"]}`, "subscribe", `"r1"`, 2},
		{`{"op":"unsubscribe","symbols":["x"]}`, "unsubscribe", "", 1},
		{`{"op":"ping","id":42}`, "ping", "42", 0},
		{`{"op":"ping","id":-1.5e3}`, "ping", "-1.5e3", 0},
		{`{"op":"ping","id":null}`, "ping", "", 0},
		{` {"op":"ping","extra":{"ignored":true}} `, "ping", "", 0},
		{`{"op":"subscribe","symbols":["", " "]}`, "subscribe", "", 2}, // emptiness is judged after normalising
	}
	for _, tc := range ok {
		req, err := hub.DecodeRequest([]byte(tc.frame))
		if err != nil || req.Op != tc.op || string(req.ID) != tc.id || len(req.Symbols) != tc.symbols {
			t.Errorf("%s → %+v, %v", tc.frame, req, err)
		}
	}
	bad := []struct{ frame, id string }{
		{``, ""},
		{`null`, ""},
		{`"subscribe"`, ""},
		{`[{"op":"ping"}]`, ""},
		{`{"op":"ping"} {"op":"ping"}`, ""},
		{`{"op":"ping",}`, ""},
		{`{"id":"a"}`, `"a"`},
		{`{"op":7,"id":"b"}`, `"b"`},
		{`{"op":"PING","id":"c"}`, `"c"`},
		{`{"op":"subscribe","id":"d"}`, `"d"`},
		{`{"op":"subscribe","id":"e","symbols":null}`, `"e"`},
		{`{"op":"subscribe","id":"f","symbols":[]}`, `"f"`},
		{`{"op":"subscribe","id":"g","symbols":"KRW-BTC"}`, `"g"`},
		{`{"op":"subscribe","id":"h","symbols":["a",1]}`, `"h"`},
		{`{"op":"ping","id":true}`, ""},
		{`{"op":"ping","id":{"a":1}}`, ""},
		{`{"op":"ping","id":"` + string(make([]byte, 70)) + `"}`, ""},
	}
	for _, tc := range bad {
		req, err := hub.DecodeRequest([]byte(tc.frame))
		var e *quotehub.Error
		if !errors.As(err, &e) || e.Code != quotehub.EBadRequest || e.Message == "" {
			t.Errorf("%q → %v, want bad_request", tc.frame, err)
			continue
		}
		if string(req.ID) != tc.id {
			t.Errorf("%q → id %s, want %s", tc.frame, req.ID, tc.id)
		}
	}
}

// FuzzDecodeRequest feeds arbitrary frames to the decoder: it never panics,
// accepts only well-formed requests, and every rejection is a bad_request
// whose error frame is valid JSON.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"op":"subscribe","id":"r1","symbols":["KRW-BTC","AAPL"]}`,
		`{"op":"unsubscribe","id":2,"symbols":["x!"]}`,
		`{"op":"ping"}`, `{"op":"subscribe"}`, `{`, `[]`, `null`, `{"id":{"a":[1,2]}}`,
		`{"op":"subscribe","symbols":["\u0000","\ud800"]}`, "\xff\xfe", `{"op":"ping","id":1e999}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := hub.DecodeRequest(data)
		if req.ID != nil && (!json.Valid(req.ID) || len(req.ID) > 64) {
			t.Fatalf("id %q is not a short JSON value", req.ID)
		}
		frame := hub.ErrorFrame(req.ID, err)
		if !json.Valid(frame) {
			t.Fatalf("error frame %q is not JSON", frame)
		}
		if err != nil {
			if quotehub.ErrorCode(err) != quotehub.EBadRequest {
				t.Fatalf("error %v is not bad_request", err)
			}
			return
		}
		switch req.Op {
		case hub.OpPing:
		case hub.OpSubscribe, hub.OpUnsubscribe:
			if len(req.Symbols) == 0 {
				t.Fatalf("%s accepted without symbols", req.Op)
			}
		default:
			t.Fatalf("accepted unknown op %q", req.Op)
		}
		for _, s := range req.Symbols {
			quotehub.NormalizeSymbol(s) // must not panic on anything
		}
	})
}
