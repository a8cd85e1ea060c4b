package record

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// TestCodes_MatchMsgpcode checks the decoder's constants against the
// library's code table.
func TestCodes_MatchMsgpcode(t *testing.T) {
	pairs := []struct {
		name string
		ours byte
		lib  byte
	}{
		{"PosFixedNumHigh", codePosFixNumMax, msgpcode.PosFixedNumHigh},
		{"FixedMapLow", codeFixMapLow, msgpcode.FixedMapLow},
		{"FixedMapHigh", codeFixMapHigh, msgpcode.FixedMapHigh},
		{"FixedArrayLow", codeFixArrayLow, msgpcode.FixedArrayLow},
		{"FixedArrayHigh", codeFixArrayHigh, msgpcode.FixedArrayHigh},
		{"FixedStrLow", codeFixStrLow, msgpcode.FixedStrLow},
		{"FixedStrHigh", codeFixStrHigh, msgpcode.FixedStrHigh},
		{"Nil", codeNil, msgpcode.Nil},
		{"False", codeFalse, msgpcode.False},
		{"True", codeTrue, msgpcode.True},
		{"Ext8", codeExt8, msgpcode.Ext8},
		{"Float", codeFloat, msgpcode.Float},
		{"Double", codeDouble, msgpcode.Double},
		{"Uint8", codeUint8, msgpcode.Uint8},
		{"Uint16", codeUint16, msgpcode.Uint16},
		{"Uint32", codeUint32, msgpcode.Uint32},
		{"Uint64", codeUint64, msgpcode.Uint64},
		{"Int8", codeInt8, msgpcode.Int8},
		{"Int16", codeInt16, msgpcode.Int16},
		{"Int32", codeInt32, msgpcode.Int32},
		{"Int64", codeInt64, msgpcode.Int64},
		{"FixExt4", codeFixExt4, msgpcode.FixExt4},
		{"FixExt8", codeFixExt8, msgpcode.FixExt8},
		{"Str8", codeStr8, msgpcode.Str8},
		{"Str16", codeStr16, msgpcode.Str16},
		{"Str32", codeStr32, msgpcode.Str32},
		{"Array16", codeArray16, msgpcode.Array16},
		{"Array32", codeArray32, msgpcode.Array32},
		{"Map16", codeMap16, msgpcode.Map16},
		{"Map32", codeMap32, msgpcode.Map32},
		{"NegFixedNumLow", codeNegFixNumMin, msgpcode.NegFixedNumLow},
	}
	for _, p := range pairs {
		if p.ours != p.lib {
			t.Errorf("%s: ours 0x%02x, msgpcode 0x%02x", p.name, p.ours, p.lib)
		}
	}
}
