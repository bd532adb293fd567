package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

func TestCheckKeys(t *testing.T) {
	var anything map[string]any
	for _, tc := range []struct {
		body string
		dst  any
		want string // part of the error; "" for none
	}{
		{`{"comment":"ok"}`, &wire.Decision{}, ""},
		{`{}`, &wire.Decision{}, ""},
		{`{"Comment":"ok"}`, &wire.Decision{}, `unknown field "Comment"`},
		{`{"comment":"a","comment":"b"}`, &wire.Decision{}, `"comment" is given more than once`},
		{`{"lockbox_enabled":true,"notification_addresses":["a@b.example","a@b.example"]}`, &wire.SettingsInput{}, ""},
		// Below the top object only repeated keys matter: the types of the
		// API's bodies hold no nested objects.
		{`{"a":{"b":1,"B":2}}`, &anything, ""},
		{`{"a":{"b":1,"b":2}}`, &anything, `"b" is given more than once`},
		{`{"a":[{"b":1},{"b":2}],"c":[]}`, &anything, ""},
		{`{"a":[1,{"x":[],"x":{}}]}`, &anything, `"x" is given more than once`},
		{`{"a":{},"b":{"a":{}}}`, &anything, ""},
		{`{"a":{"c":1},"a":2}`, &anything, `"a" is given more than once`},
		{`[{"a":1},{"a":1}]`, &anything, ""},
		{`"text"`, &anything, ""},
	} {
		err := checkKeys([]byte(tc.body), tc.dst)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkKeys(%s) = %v, want nil", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkKeys(%s) = %v, want an error with %q", tc.body, err, tc.want)
		}
	}
}

func TestFieldNames(t *testing.T) {
	type inner struct {
		Deep string `json:"deep"`
	}
	type outer struct {
		inner
		Tagged   string `json:"tagged,omitempty"`
		Untagged string
		Skipped  string `json:"-"`
		hidden   string
	}
	got := strings.Join(fieldNames(reflect.TypeOf(&outer{})), ",")
	if want := "deep,tagged,Untagged"; got != want {
		t.Errorf("fieldNames = %s, want %s", got, want)
	}
	if fieldNames(reflect.TypeOf(new(map[string]any))) != nil {
		t.Error("fieldNames of a map is not nil")
	}
}
