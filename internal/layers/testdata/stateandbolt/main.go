// Command stateandbolt is the smallest program a library user writes: it
// imports state and boltbackend only. The layers test lists its
// dependencies.
package main

import (
	"github.com/go-ftl2/ftlstate/boltbackend"
	"github.com/go-ftl2/ftlstate/state"
)

func main() {
	b, err := boltbackend.Open("state.db", nil)
	if err != nil {
		panic(err)
	}
	st, err := state.Open(b)
	if err != nil {
		panic(err)
	}
	st.Close()
}
