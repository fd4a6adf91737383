package status

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Readiness is one connector's value in GET /api/status, as a client sees it.
type Readiness string

// Readiness values: the seed reports true, "migration" or false.
const (
	Ready     Readiness = "ready"
	Migrating Readiness = "migration"
	NotReady  Readiness = "not ready"
)

// Report is the decoded body of GET /api/status.
type Report struct {
	Connectors map[string]Readiness
	LogHealthy bool // the seed's "vaxine" key
}

// ErrStreamEnded is returned by Client.Events when the engine closed the
// stream; the caller should reconnect after the last event it saw.
var ErrStreamEnded = errors.New("event stream ended")

// Client is a typed client of the status API.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token string
}

// NewClient makes a client for the engine at baseURL (e.g.
// "http://127.0.0.1:5050"). hc nil means http.DefaultClient; it must have no
// overall Timeout if Events is used (pass deadlines through ctx instead).
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		// url.Parse's own messages ("first path segment in URL cannot
		// contain colon") do not tell the user what to type.
		return nil, fmt.Errorf("parsing status url %q: want http://host:port", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, hc: hc}, nil
}

// WithToken is a copy of c that sends token as its bearer token
// (STATUS_API_TOKEN); an empty token sends none.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// URL is the engine's base URL.
func (c *Client) URL() string { return c.base.String() }

func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// do sends method to path with the query q and decodes the JSON answer into v.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, v any) error {
	u := c.base.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("requesting %s: %w", path, err)
	}
	Authorize(req, c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("requesting %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := Refusal(resp); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("requesting %s: %s: %s", path, resp.Status, msg)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}

// Status reads GET /api/status.
func (c *Client) Status(ctx context.Context) (Report, error) {
	var body struct {
		Connectors map[string]json.RawMessage `json:"connectors"`
		Vaxine     bool                       `json:"vaxine"`
	}
	if err := c.get(ctx, "/api/status", &body); err != nil {
		return Report{}, err
	}
	r := Report{Connectors: map[string]Readiness{}, LogHealthy: body.Vaxine}
	for name, raw := range body.Connectors {
		switch strings.TrimSpace(string(raw)) {
		case "true":
			r.Connectors[name] = Ready
		case `"migration"`:
			r.Connectors[name] = Migrating
		case "false":
			r.Connectors[name] = NotReady
		default:
			return Report{}, fmt.Errorf("decoding /api/status: connector %q has unexpected value %s", name, raw)
		}
	}
	return r, nil
}

// Connectors reads GET /api/connectors.
func (c *Client) Connectors(ctx context.Context) ([]Connector, error) {
	var r ConnectorsResponse
	if err := c.get(ctx, "/api/connectors", &r); err != nil {
		return nil, err
	}
	return r.Connectors, nil
}

// Log reads GET /api/log.
func (c *Client) Log(ctx context.Context) (Log, error) {
	var l Log
	err := c.get(ctx, "/api/log", &l)
	return l, err
}

// Sessions reads GET /api/sessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var r SessionsResponse
	if err := c.get(ctx, "/api/sessions", &r); err != nil {
		return nil, err
	}
	return r.Sessions, nil
}

// EventStream is an open GET /api/events response.
type EventStream struct {
	ctx  context.Context
	body io.ReadCloser
	sc   *bufio.Scanner
}

// OpenEvents opens the event stream, starting after event ID after (0: the
// whole ring of recent events). It returns once the engine has answered.
func (c *Client) OpenEvents(ctx context.Context, after uint64) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("/api/events").String(), nil)
	if err != nil {
		return nil, fmt.Errorf("requesting /api/events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
	}
	Authorize(req, c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting /api/events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		if err := Refusal(resp); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("requesting /api/events: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &EventStream{ctx: ctx, body: resp.Body, sc: sc}, nil
}

// Next blocks until the next event. It fails with the context's error when
// ctx is done, ErrStreamEnded when the engine closed the stream, or the I/O
// error; the caller should then reopen after the last event it saw.
func (s *EventStream) Next() (Event, error) {
	var data strings.Builder
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return Event{}, fmt.Errorf("decoding event: %w", err)
			}
			return ev, nil
		case strings.HasPrefix(line, ":"):
			// heartbeat comment
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := s.ctx.Err(); err != nil {
		return Event{}, err
	}
	if err := s.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("reading /api/events: %w", err)
	}
	return Event{}, ErrStreamEnded
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// Events streams events after ID after, calling fn for each, until ctx is
// done (ctx.Err()), fn fails (its error), or the stream breaks (see Next).
func (c *Client) Events(ctx context.Context, after uint64, fn func(Event) error) error {
	s, err := c.OpenEvents(ctx, after)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		ev, err := s.Next()
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}
