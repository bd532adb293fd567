package storedjson_test

import (
	"testing"

	"github.com/lockbox-oss/lockbox/internal/storedjson"
)

type record struct {
	A string   `json:"a"`
	B []string `json:"b"`
	C int      `json:"c"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, in  string
		newer     bool
		fails     bool
		want      record
		defaultsC int
	}{
		{name: "known fields", in: `{"a":"x","b":["1","2"]}`, want: record{A: "x", B: []string{"1", "2"}, C: 7}, defaultsC: 7},
		{name: "an unknown field in the middle", in: `{"a":"x","z":{"q":1},"b":["1"],"c":3}`, newer: true, want: record{A: "x", B: []string{"1"}, C: 3}},
		{name: "an unknown field first", in: `{"z":true,"a":"y"}`, newer: true, want: record{A: "y", C: 7}, defaultsC: 7},
		{name: "not JSON", in: `{"a":`, fails: true},
		{name: "a wrong type", in: `{"a":1}`, fails: true},
		{name: "trailing data", in: `{"a":"x"} {}`, fails: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := record{C: c.defaultsC}
			newer, err := storedjson.Decode([]byte(c.in), &v)
			if c.fails {
				if err == nil {
					t.Fatalf("decoded %q as %+v (newer %v)", c.in, v, newer)
				}
				return
			}
			if err != nil || newer != c.newer {
				t.Fatalf("newer %v, err %v; want newer %v", newer, err, c.newer)
			}
			if v.A != c.want.A || v.C != c.want.C || len(v.B) != len(c.want.B) {
				t.Fatalf("got %+v, want %+v", v, c.want)
			}
			for i := range v.B {
				if v.B[i] != c.want.B[i] {
					t.Fatalf("got %+v, want %+v", v, c.want)
				}
			}
		})
	}
}
