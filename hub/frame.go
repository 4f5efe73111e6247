package hub

import (
	"bytes"
	"encoding/json"
	"errors"

	"quotehub"
)

// Operations a client may send.
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPing        = "ping"
)

// maxIDBytes bounds the request id a client may ask to have echoed.
const maxIDBytes = 64

// Request is one decoded client frame.
type Request struct {
	Op string
	// ID is the request id as raw JSON (a string or a number), echoed
	// verbatim in the reply; nil when the request has none.
	ID      json.RawMessage
	Symbols []string
	Lists   []string // follow, unfollow
	// Candles are the intervals of a subscribe or unsubscribe that names
	// candle streams; nil when it names none.
	Candles []quotehub.Interval
}

// DecodeRequest decodes a client frame. On error it returns a
// *quotehub.Error with code bad_request, and the request's ID when the id
// itself could be read, so the error reply can carry it.
func DecodeRequest(data []byte) (Request, error) {
	var w struct {
		Op      json.RawMessage `json:"op"`
		ID      json.RawMessage `json:"id"`
		Symbols json.RawMessage `json:"symbols"`
		Lists   json.RawMessage `json:"lists"`
		Candles json.RawMessage `json:"candles"`
	}
	var req Request
	if err := json.Unmarshal(data, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return req, badRequest("a request must be a JSON object")
		}
		return req, badRequest("malformed JSON: " + err.Error())
	}
	if id := w.ID; len(id) > 0 && !bytes.Equal(id, []byte("null")) {
		switch {
		case len(id) > maxIDBytes:
			return req, badRequest("id is longer than 64 bytes")
		case id[0] == '"', id[0] == '-', id[0] >= '0' && id[0] <= '9':
			req.ID = append(json.RawMessage(nil), id...)
		default:
			return req, badRequest("id must be a string or a number")
		}
	}
	if len(w.Op) == 0 || bytes.Equal(w.Op, []byte("null")) {
		return req, badRequest(`missing "op"`)
	}
	if err := json.Unmarshal(w.Op, &req.Op); err != nil {
		return req, badRequest(`"op" must be a string`)
	}
	switch req.Op {
	case OpSubscribe, OpUnsubscribe:
		if len(w.Symbols) == 0 || bytes.Equal(w.Symbols, []byte("null")) {
			return req, badRequest(`missing "symbols"`)
		}
		if err := json.Unmarshal(w.Symbols, &req.Symbols); err != nil {
			return req, badRequest(`"symbols" must be an array of strings`)
		}
		if len(req.Symbols) == 0 {
			return req, badRequest(`"symbols" is empty`)
		}
		if len(w.Candles) > 0 && !bytes.Equal(w.Candles, []byte("null")) {
			var raw []string
			if err := json.Unmarshal(w.Candles, &raw); err != nil {
				return req, badRequest(`"candles" must be an array of intervals such as "1m", "1d"`)
			}
			ivs, err := ParseIntervals(raw)
			if err != nil {
				return req, err
			}
			req.Candles = ivs
		}
	case OpFollow, OpUnfollow:
		if len(w.Lists) == 0 || bytes.Equal(w.Lists, []byte("null")) {
			return req, badRequest(`missing "lists"`)
		}
		if err := json.Unmarshal(w.Lists, &req.Lists); err != nil {
			return req, badRequest(`"lists" must be an array of strings`)
		}
		if len(req.Lists) == 0 {
			return req, badRequest(`"lists" is empty`)
		}
	case OpPing:
	default:
		op := req.Op
		if len(op) > 32 {
			op = op[:32] + "…"
		}
		return req, badRequest("unknown op " + string(quotehub.AppendJSONString(nil, op)) + ": use subscribe, unsubscribe, follow, unfollow or ping")
	}
	return req, nil
}

func badRequest(msg string) *quotehub.Error {
	return &quotehub.Error{Code: quotehub.EBadRequest, Message: msg}
}

// Rejection is a symbol refused by a subscribe, a batch read or an SSE
// stream, with the reason.
type Rejection struct {
	Symbol  string `json:"symbol"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewRejection returns the rejection of symbol for err.
func NewRejection(symbol string, err error) Rejection {
	return Rejection{Symbol: symbol, Code: quotehub.ErrorCode(err), Message: quotehub.ErrorMessage(err)}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own frame structs are marshalled here
	}
	return b
}

type limitsFrame struct {
	MaxSymbols       int `json:"max_symbols"`
	MaxMessageBytes  int `json:"max_message_bytes"`
	MaxCandleStreams int `json:"max_candle_streams,omitempty"`
}

// WelcomeFrame is the first frame of a WebSocket connection.
func (c *Client) WelcomeFrame() []byte {
	o := &c.hub.opts
	var user string
	if p, ok := c.User(); ok {
		user = p.UserID
	}
	return mustMarshal(struct {
		Type    string      `json:"type"`
		Node    string      `json:"node"`
		Session string      `json:"session"`
		User    string      `json:"user,omitempty"`
		Limits  limitsFrame `json:"limits"`
	}{"welcome", o.Node, c.id, user, c.limits()})
}

func (c *Client) limits() limitsFrame {
	o := &c.hub.opts
	l := limitsFrame{MaxSymbols: o.MaxSymbols, MaxMessageBytes: o.MaxMessageBytes}
	if c.hub.candles != nil {
		l.MaxCandleStreams = o.MaxCandleStreams
	}
	return l
}

// subscribedFrame is the reply to a subscribe; candles, the intervals of
// a candle subscription, is left out when nil.
func subscribedFrame(id json.RawMessage, symbols []string, rejected []Rejection, candles []string) []byte {
	if symbols == nil {
		symbols = []string{}
	}
	if rejected == nil {
		rejected = []Rejection{}
	}
	return mustMarshal(struct {
		Type     string          `json:"type"`
		ID       json.RawMessage `json:"id,omitempty"`
		Symbols  []string        `json:"symbols"`
		Candles  []string        `json:"candles,omitempty"`
		Rejected []Rejection     `json:"rejected"`
	}{"subscribed", id, symbols, candles, rejected})
}

func unsubscribedFrame(id json.RawMessage, symbols []string, candles []string) []byte {
	if symbols == nil {
		symbols = []string{}
	}
	return mustMarshal(struct {
		Type    string          `json:"type"`
		ID      json.RawMessage `json:"id,omitempty"`
		Symbols []string        `json:"symbols"`
		Candles []string        `json:"candles,omitempty"`
	}{"unsubscribed", id, symbols, candles})
}

func pongFrame(id json.RawMessage, now int64) []byte {
	return mustMarshal(struct {
		Type string          `json:"type"`
		ID   json.RawMessage `json:"id,omitempty"`
		Time int64           `json:"time"`
	}{"pong", id, now})
}

// ErrorFrame is the WebSocket error frame for err.
func ErrorFrame(id json.RawMessage, err error) []byte {
	return mustMarshal(struct {
		Type    string          `json:"type"`
		ID      json.RawMessage `json:"id,omitempty"`
		Code    string          `json:"code"`
		Message string          `json:"message"`
	}{"error", id, quotehub.ErrorCode(err), quotehub.ErrorMessage(err)})
}
