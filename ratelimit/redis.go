package ratelimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
)

// Defaults for RedisConfig's zero fields.
const (
	defaultRedisTimeout   = 100 * time.Millisecond
	defaultRedisPoolSize  = 4
	defaultRedisKeyPrefix = "portico:ratelimit:"
	// redialAfter is how long a failed dial is remembered. While Redis is down, requests then
	// fail open (or closed) at once instead of each waiting for a connect timeout.
	redialAfter = time.Second
)

// RedisConfig configures a RedisStore.
type RedisConfig struct {
	// Addr is Redis's host:port. Plain TCP only: run Redis on a trusted network.
	Addr string
	// Password, when set, is sent with AUTH on every new connection.
	Password string
	// Sliding counts in a sliding window instead of fixed windows. It approximates the count of
	// the last full window from two fixed windows: with the current window's count c, the
	// previous window's count p, and the fraction f of the current window already elapsed, the
	// count is p*(1-f) + c. This assumes the previous window's requests were spread evenly; it
	// smooths the burst of up to twice the limit that fixed windows allow around a boundary,
	// at the cost of one more key read per hit. Like fixed windows, rejected requests count.
	Sliding bool
	// Timeout bounds one round trip to Redis; dialing a new connection may take as long again.
	// Default 100ms: a rate limit decision sits on every request's path. Envoy's ratelimit
	// filter must wait longer than this (its timeout defaults to 20ms), or it decides by its
	// own failure_mode_deny before the service can apply Config.FailClosed.
	Timeout time.Duration
	// PoolSize is how many idle connections are kept. Default 4.
	PoolSize int
	// KeyPrefix is put in front of every Redis key. Default "portico:ratelimit:".
	KeyPrefix string
}

// RedisStore counts in Redis, so that every Portico instance sharing the Redis enforces one
// combined limit. Windows are aligned to each instance's clock, which should be synchronised.
type RedisStore struct {
	cfg  RedisConfig
	idle chan *respConn

	mu sync.Mutex
	// dialErr is the last dial failure, returned without dialing until redialAt.
	dialErr   error
	redialAt  time.Time
	closed    bool
	closeOnce sync.Once
}

// NewRedisStore returns a store using cfg. It does not connect: Redis may come up later, and
// until it does the service applies its failure policy.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redis store: address is empty")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("redis store: address %q is not host:port: %w", cfg.Addr, err)
	}
	if cfg.Timeout < 0 || cfg.PoolSize < 0 {
		return nil, fmt.Errorf("redis store: timeout %s and pool size %d must not be negative", cfg.Timeout, cfg.PoolSize)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultRedisTimeout
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = defaultRedisPoolSize
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = defaultRedisKeyPrefix
	}
	return &RedisStore{cfg: cfg, idle: make(chan *respConn, cfg.PoolSize)}, nil
}

// Close closes the idle connections. Calls to Add after Close fail.
func (r *RedisStore) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.closeOnce.Do(func() { close(r.idle) })
	for c := range r.idle {
		c.conn.Close()
	}
	return nil
}

// Add sends every hit's commands in one pipeline: for a fixed window INCRBY and EXPIRE on the
// window's key; for a sliding window also GET of the previous window's key. A key lives for one
// window (two when sliding, since the next window reads it), so Redis needs no cleanup.
func (r *RedisStore) Add(ctx context.Context, now time.Time, hits []Hit, counts []Count) error {
	c, err := r.get(ctx)
	if err != nil {
		return err
	}
	// now places the windows; the deadline is wall time, whatever clock the caller counts by.
	deadline := time.Now().Add(r.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		c.conn.Close()
		return fmt.Errorf("redis %s: %w", r.cfg.Addr, err)
	}
	for _, h := range hits {
		secs := int64(h.Window / time.Second)
		start := now.Truncate(h.Window).Unix()
		key := r.cfg.KeyPrefix + h.Key + ":"
		cur := key + strconv.FormatInt(start, 10)
		ttl := secs
		if r.cfg.Sliding {
			ttl = 2 * secs
		}
		c.command("INCRBY", cur, strconv.FormatUint(h.Hits, 10))
		c.command("EXPIRE", cur, strconv.FormatInt(ttl, 10))
		if r.cfg.Sliding {
			c.command("GET", key+strconv.FormatInt(start-secs, 10))
		}
	}
	if err := r.exchange(c, now, hits, counts); err != nil {
		c.conn.Close()
		return fmt.Errorf("redis %s: %w", r.cfg.Addr, err)
	}
	r.put(c)
	return nil
}

// exchange flushes the pipeline and reads the replies. After an error the replies still
// unread make the connection useless, so the caller closes it.
func (r *RedisStore) exchange(c *respConn, now time.Time, hits []Hit, counts []Count) error {
	if err := c.flush(); err != nil {
		return err
	}
	for i, h := range hits {
		used, err := c.readInt()
		if err != nil {
			return fmt.Errorf("INCRBY: %w", err)
		}
		if _, err := c.readInt(); err != nil {
			return fmt.Errorf("EXPIRE: %w", err)
		}
		start := now.Truncate(h.Window)
		resetIn := start.Add(h.Window).Sub(now)
		if r.cfg.Sliding {
			prev, err := c.readBulkInt()
			if err != nil {
				return fmt.Errorf("GET: %w", err)
			}
			// The previous window weighs by the part of it still inside the sliding window.
			weight := float64(resetIn) / float64(h.Window)
			used += int64(math.Ceil(float64(prev) * weight))
		}
		counts[i] = Count{Used: uint64(max(used, 0)), ResetIn: resetIn}
	}
	return nil
}

func (r *RedisStore) get(ctx context.Context) (*respConn, error) {
	select {
	case c, ok := <-r.idle:
		if ok {
			return c, nil
		}
		return nil, errors.New("redis store is closed")
	default:
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("redis store is closed")
	}
	if r.dialErr != nil && time.Now().Before(r.redialAt) {
		err := r.dialErr
		r.mu.Unlock()
		return nil, err
	}
	r.mu.Unlock()
	c, err := r.dial(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.dialErr = fmt.Errorf("redis %s: %w", r.cfg.Addr, err)
		r.redialAt = time.Now().Add(redialAfter)
		return nil, r.dialErr
	}
	r.dialErr = nil
	return c, nil
}

func (r *RedisStore) dial(ctx context.Context) (*respConn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := newRESPConn(conn)
	if r.cfg.Password != "" {
		if deadline, ok := ctx.Deadline(); ok {
			conn.SetDeadline(deadline)
		}
		c.command("AUTH", r.cfg.Password)
		err := c.flush()
		if err == nil {
			_, err = c.readSimple()
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	return c, nil
}

// put keeps c for reuse, or closes it when the pool is full or the store closed.
func (r *RedisStore) put(c *respConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.conn.Close()
		return
	}
	select {
	case r.idle <- c:
	default:
		c.conn.Close()
	}
}

// respConn speaks the subset of RESP2 this store needs: commands as arrays of bulk strings,
// replies as integers, simple strings, bulk strings and errors.
type respConn struct {
	conn net.Conn
	r    *bufio.Reader
	out  []byte
}

func newRESPConn(conn net.Conn) *respConn {
	return &respConn{conn: conn, r: bufio.NewReader(conn)}
}

// command appends one command to the pipeline.
func (c *respConn) command(args ...string) {
	c.out = append(c.out, '*')
	c.out = strconv.AppendInt(c.out, int64(len(args)), 10)
	c.out = append(c.out, "\r\n"...)
	for _, a := range args {
		c.out = append(c.out, '$')
		c.out = strconv.AppendInt(c.out, int64(len(a)), 10)
		c.out = append(c.out, "\r\n"...)
		c.out = append(c.out, a...)
		c.out = append(c.out, "\r\n"...)
	}
}

func (c *respConn) flush() error {
	_, err := c.conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

// redisError is an error reply: the command failed but the connection is still in step.
type redisError string

func (e redisError) Error() string { return "redis replied: " + string(e) }

// readLine reads one reply line, its type byte split off.
func (c *respConn) readLine() (byte, string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, "", fmt.Errorf("malformed reply %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	if kind == '-' {
		return kind, "", redisError(body)
	}
	return kind, body, nil
}

func (c *respConn) readInt() (int64, error) {
	kind, body, err := c.readLine()
	if err != nil {
		return 0, err
	}
	if kind != ':' {
		return 0, fmt.Errorf("want an integer reply, got %q", string(kind)+body)
	}
	return strconv.ParseInt(body, 10, 64)
}

func (c *respConn) readSimple() (string, error) {
	kind, body, err := c.readLine()
	if err != nil {
		return "", err
	}
	if kind != '+' {
		return "", fmt.Errorf("want a status reply, got %q", string(kind)+body)
	}
	return body, nil
}

// readBulkInt reads a bulk string holding an integer, as GET returns a counter; a missing key
// is 0.
func (c *respConn) readBulkInt() (int64, error) {
	kind, body, err := c.readLine()
	if err != nil {
		return 0, err
	}
	if kind != '$' {
		return 0, fmt.Errorf("want a bulk reply, got %q", string(kind)+body)
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		return 0, fmt.Errorf("malformed bulk length %q", body)
	}
	if n < 0 {
		return 0, nil
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(buf[:n]), 10, 64)
}
