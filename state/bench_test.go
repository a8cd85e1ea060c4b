package state_test

import (
	"fmt"
	"testing"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func benchHost() *state.HostState {
	return &state.HostState{
		Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "webservers",
		Vars: map[string]any{
			"http_port": int64(80), "role": "web", "enabled": true, "weight": 0.5,
			"tags":   []any{"a", "b", "c"},
			"limits": map[string]any{"cpu": int64(2), "mem": "4G", "disks": []any{map[string]any{"size": int64(20)}}},
		},
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	h := benchHost()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Normalize(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkState_GetHost(b *testing.B) {
	st, err := state.Open(statetest.NewMemory())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range 1000 {
		h := benchHost()
		h.Name = fmt.Sprintf("h%04d", i)
		st.AddHost(h)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := st.GetHost(fmt.Sprintf("h%04d", i%1000)); !ok {
			b.Fatal("missing")
		}
	}
}
