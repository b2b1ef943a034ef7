package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// etcd's v3 JSON gateway carries keys and values base64-encoded and 64-bit integers as strings.

type keyValue struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

type responseHeader struct {
	Revision int64 `json:"revision,string"`
}

type rangeRequest struct {
	Key       []byte `json:"key"`
	RangeEnd  []byte `json:"range_end"`
	CountOnly bool   `json:"count_only,omitempty"`
}

type rangeResponse struct {
	Header responseHeader `json:"header"`
	KVs    []keyValue     `json:"kvs"`
}

type watchCreate struct {
	Key           []byte `json:"key"`
	RangeEnd      []byte `json:"range_end"`
	StartRevision int64  `json:"start_revision,string"`
}

type watchRequest struct {
	CreateRequest watchCreate `json:"create_request"`
}

type watchEvent struct {
	// Type is "PUT" (or absent: the gateway leaves out a zero enum) or "DELETE".
	Type string   `json:"type"`
	KV   keyValue `json:"kv"`
}

// watchMessage is one line of the watch stream: a result, or the gateway's error.
type watchMessage struct {
	Result *struct {
		Header          responseHeader `json:"header"`
		Canceled        bool           `json:"canceled"`
		CancelReason    string         `json:"cancel_reason"`
		CompactRevision int64          `json:"compact_revision,string"`
		Events          []watchEvent   `json:"events"`
	} `json:"result"`
	Error *gatewayError `json:"error"`
}

type gatewayError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// prefixEnd is the end of the key range that holds exactly the keys starting with prefix:
// the prefix with its last byte below 0xff incremented, as etcd's own clients compute it.
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0} // every key from prefix on
}

// etcdClient speaks to one etcd member's JSON gateway.
type etcdClient struct {
	http     *http.Client
	endpoint string // http://host:port
}

// post sends body as JSON to path and returns the response for the caller to read and close.
func (c etcdClient) post(ctx context.Context, path string, body any) (*http.Response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.endpoint, "/")+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s %s: %s: %s", c.endpoint, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// rangePrefix reads every key under prefix.
func (c etcdClient) rangePrefix(ctx context.Context, prefix string, countOnly bool) (*rangeResponse, error) {
	resp, err := c.post(ctx, "/v3/kv/range", rangeRequest{Key: []byte(prefix), RangeEnd: prefixEnd(prefix), CountOnly: countOnly})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rr rangeResponse
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		return nil, fmt.Errorf("%s: read range response: %w", c.endpoint, err)
	}
	return &rr, nil
}

// errCompacted says the watch started at a revision etcd no longer has: read everything again.
var errCompacted = errors.New("watch revision compacted")

// watchPrefix follows the changes under prefix from revision from on, calling apply with each
// batch of events, until ctx ends or the stream does (an error: the caller reads and watches
// again), with the revision each batch brings etcd to.
func (c etcdClient) watchPrefix(ctx context.Context, prefix string, from int64, apply func(revision int64, events []watchEvent)) error {
	resp, err := c.post(ctx, "/v3/watch", watchRequest{CreateRequest: watchCreate{Key: []byte(prefix), RangeEnd: prefixEnd(prefix), StartRevision: from}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m watchMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%s: watch: %w", c.endpoint, err)
		}
		switch r := m.Result; {
		case m.Error != nil:
			return fmt.Errorf("%s: watch: %s", c.endpoint, m.Error.Message)
		case r == nil:
			continue
		case r.CompactRevision != 0:
			return fmt.Errorf("%s: %w at %d", c.endpoint, errCompacted, r.CompactRevision)
		case r.Canceled:
			return fmt.Errorf("%s: watch canceled by etcd: %s", c.endpoint, r.CancelReason)
		case len(r.Events) > 0:
			apply(r.Header.Revision, r.Events)
		}
	}
}
