package state_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/state"
)

func TestBatchValidate(t *testing.T) {
	now := state.Timestamp(time.Now())
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	host := func(name string) *state.HostState {
		return &state.HostState{Name: name, CreatedAt: now, UpdatedAt: now}
	}
	res := &state.ResourceState{Type: "t", CreatedAt: now, UpdatedAt: now}
	put := func(name string) state.Change { return state.Change{Kind: state.KindHost, Key: name, Host: host(name)} }

	good := []*state.Batch{
		{Time: now},
		{Time: now, Changes: []state.Change{put("a"), {Kind: state.KindResource, Key: "a", Resource: res}, {Kind: state.KindHost, Key: "gone"}}},
		{Time: now, Replace: &state.Metadata{Lineage: "L", Serial: 9}},
		{Time: time.Time{}},
		{Time: now, Changes: []state.Change{put("a"), {Kind: state.KindOperation, Key: "a", Operation: &state.Operation{ID: "a", Action: "create", Resource: "r", StartedAt: now}}, {Kind: state.KindOperation, Key: "gone"}}},
	}
	for i, b := range good {
		assert.NoError(t, b.Validate(), "batch %d", i)
	}

	bad := map[string]struct {
		b    *state.Batch
		want string
	}{
		"nil":               {nil, "nil batch"},
		"time":              {&state.Batch{Time: far}, "batch: time: year 10000"},
		"replace time":      {&state.Batch{Time: now, Replace: &state.Metadata{CreatedAt: far}}, "batch: replace: metadata.created_at"},
		"replace lineage":   {&state.Batch{Time: now, Replace: &state.Metadata{Lineage: "\xff"}}, "metadata.lineage: not valid UTF-8"},
		"kind":              {&state.Batch{Changes: []state.Change{{Kind: 9, Key: "a"}}}, "change 0: kind: unknown Kind(9)"},
		"empty key":         {&state.Batch{Changes: []state.Change{{Kind: state.KindResource, Key: ""}}}, `resource "": key: must not be empty`},
		"delete bad key":    {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a\nb"}}}, `host "a\nb": key: control character`},
		"long key":          {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: strings.Repeat("k", state.MaxNameLen+1)}}}, "key: longer than"},
		"name mismatch":     {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: host("b")}}}, `host "a": name: "b" does not match its key`},
		"both records":      {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: host("a"), Resource: res}}}, `host "a": resource: set on a host change`},
		"host on resource":  {&state.Batch{Changes: []state.Change{{Kind: state.KindResource, Key: "a", Host: host("a")}}}, `resource "a": host: set on a resource change`},
		"record time":       {&state.Batch{Changes: []state.Change{{Kind: state.KindResource, Key: "r", Resource: &state.ResourceState{Type: "t", UpdatedAt: far}}}}, `resource "r": updated_at: year 10000`},
		"twice":             {&state.Batch{Changes: []state.Change{put("a"), put("b"), {Kind: state.KindHost, Key: "a"}}}, `host "a": changed twice in one batch`},
		"operation ID":      {&state.Batch{Changes: []state.Change{{Kind: state.KindOperation, Key: "a", Operation: &state.Operation{ID: "b", Action: "create", Resource: "r"}}}}, `operation "a": id: "b" does not match its key`},
		"operation time":    {&state.Batch{Changes: []state.Change{{Kind: state.KindOperation, Key: "a", Operation: &state.Operation{ID: "a", Action: "create", Resource: "r", StartedAt: far}}}}, `operation "a": started_at: year 10000`},
		"host on operation": {&state.Batch{Changes: []state.Change{{Kind: state.KindOperation, Key: "a", Host: host("a")}}}, `operation "a": host: set on an operation change`},
		"operation on host": {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: host("a"), Operation: &state.Operation{ID: "a"}}}}, `host "a": operation: set on a host change`},
		"operation twice":   {&state.Batch{Changes: []state.Change{{Kind: state.KindOperation, Key: "a"}, {Kind: state.KindOperation, Key: "a"}}}, `operation "a": changed twice in one batch`},
		"port":              {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "a", Port: -1}}}}, `host "a": port: must be 0..65535`},
		"resource type":     {&state.Batch{Changes: []state.Change{{Kind: state.KindResource, Key: "r", Resource: &state.ResourceState{}}}}, `resource "r": type: must not be empty`},
		"not normalized":    {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "a", Vars: map[string]any{"n": 1}}}}}, `host "a": not in normalized form`},
		"monotonic time":    {&state.Batch{Changes: []state.Change{{Kind: state.KindHost, Key: "a", Host: &state.HostState{Name: "a", CreatedAt: time.Now()}}}}, `host "a": not in normalized form`},
		"value model":       {&state.Batch{Changes: []state.Change{{Kind: state.KindResource, Key: "r", Resource: &state.ResourceState{Type: "t", Data: map[string]any{"c": make(chan int)}}}}}, `resource "r": data.c: chan int value is not representable in JSON`},
	}
	for name, tc := range bad {
		err := tc.b.Validate()
		require.Error(t, err, name)
		assert.ErrorIs(t, err, state.ErrInvalid, name)
		assert.Contains(t, err.Error(), tc.want, name)
	}
}
