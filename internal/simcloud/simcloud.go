package simcloud

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Spec is what a create asks for.
type Spec struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	Type   string `json:"type"`
}

// Instance is a created instance, as the provider reports it.
type Instance struct {
	ID          string    `json:"id"`
	ClientToken string    `json:"client_token"`
	Name        string    `json:"name"`
	Region      string    `json:"region"`
	Type        string    `json:"type"`
	IPv4        string    `json:"ipv4"`
	CreatedAt   time.Time `json:"created_at"`
}

// Options configure Open; nil means no latency.
type Options struct {
	// Latency is the mean time of an API call; each call waits a random
	// time between 0 and twice it (part of it before the provider acts,
	// part after: the answer is in flight).
	Latency time.Duration
}

// Cloud is a client of the simulated provider whose state is the file it
// was opened on. Its methods may be called concurrently, and other
// processes may use the same file at the same time.
type Cloud struct {
	path    string
	latency time.Duration

	mu sync.Mutex // guards the fields below, and the file's offset
	f  *os.File
	// read is how far the file has been read; instances are those read,
	// by client token.
	read    int64
	byToken map[string]*Instance
	list    []*Instance
}

// Open opens (creating, mode 0600) the provider's state file at path and
// reads it. A last line without its newline (a write cut by a power loss:
// never answered) is dropped.
func Open(path string, opts *Options) (*Cloud, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("simcloud: %w", err)
	}
	c := &Cloud{path: path, f: f, byToken: map[string]*Instance{}}
	if opts != nil {
		c.latency = opts.Latency
	}
	err = c.locked(func() error { return nil })
	if err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the file.
func (c *Cloud) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}

// wait sleeps a random part of the latency, as a network round trip.
func (c *Cloud) wait() {
	if c.latency > 0 {
		time.Sleep(rand.N(c.latency))
	}
}

// locked runs fn holding the file's lock (against other processes) and
// c.mu, after reading what others appended.
func (c *Cloud) locked(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fd := int(c.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("simcloud: lock %s: %w", c.path, err)
	}
	defer syscall.Flock(fd, syscall.LOCK_UN)
	if err := c.catchUp(); err != nil {
		return err
	}
	return fn()
}

// catchUp reads the lines appended since the last read; a torn last line
// is cut off.
func (c *Cloud) catchUp() error {
	fi, err := c.f.Stat()
	if err != nil {
		return fmt.Errorf("simcloud: %w", err)
	}
	if fi.Size() == c.read {
		return nil
	}
	r := bufio.NewReader(io.NewSectionReader(c.f, c.read, fi.Size()-c.read))
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 { // torn: never acknowledged
				if err := c.f.Truncate(c.read); err != nil {
					return fmt.Errorf("simcloud: %w", err)
				}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("simcloud: %w", err)
		}
		var inst Instance
		if err := json.Unmarshal(bytes.TrimSpace(line), &inst); err != nil || inst.ID == "" {
			return fmt.Errorf("simcloud: %s: damaged record at byte %d", c.path, c.read)
		}
		c.read += int64(len(line))
		c.add(&inst)
	}
}

func (c *Cloud) add(inst *Instance) {
	if inst.ClientToken != "" {
		if _, dup := c.byToken[inst.ClientToken]; !dup {
			c.byToken[inst.ClientToken] = inst
		}
	}
	c.list = append(c.list, inst)
}

// Create creates an instance for spec, idempotently by token: when an
// instance was already created with token (by this process or another),
// that instance is returned and nothing is created. The instance is
// durable (fsync'ed) before Create returns; a process killed during the
// call may or may not have created it, and does not know which: that is
// what FindByToken answers. An empty token creates a new instance every
// time.
func (c *Cloud) Create(token string, spec Spec) (*Instance, error) {
	c.wait() // the request on its way
	var inst *Instance
	created := false
	err := c.locked(func() error {
		if old, ok := c.byToken[token]; ok && token != "" {
			inst = old
			return nil
		}
		inst = &Instance{ID: newID(), ClientToken: token, Name: spec.Name, Region: spec.Region, Type: spec.Type,
			IPv4: fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), 1+rand.IntN(254)), CreatedAt: time.Now().UTC()}
		line, err := json.Marshal(inst)
		if err != nil {
			return err
		}
		if _, err := c.f.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("simcloud: %s: %w", c.path, err)
		}
		c.read += int64(len(line) + 1)
		c.add(inst)
		created = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if created {
		if err := c.f.Sync(); err != nil {
			return nil, fmt.Errorf("simcloud: %s: %w", c.path, err)
		}
	}
	c.wait() // the answer on its way
	cp := *inst
	return &cp, nil
}

// FindByToken returns the instance created with token, if any.
func (c *Cloud) FindByToken(token string) (*Instance, bool, error) {
	c.wait()
	var inst *Instance
	err := c.locked(func() error {
		inst = c.byToken[token]
		return nil
	})
	if err != nil || inst == nil {
		return nil, false, err
	}
	cp := *inst
	return &cp, true, nil
}

// Instances returns every instance the provider holds, oldest first.
func (c *Cloud) Instances() ([]*Instance, error) {
	var out []*Instance
	err := c.locked(func() error {
		for _, inst := range c.list {
			cp := *inst
			out = append(out, &cp)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b *Instance) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

func newID() string {
	var b [6]byte
	crand.Read(b[:])
	return "i-" + hex.EncodeToString(b[:])
}
