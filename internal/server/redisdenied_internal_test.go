package server

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// A Redis that is no node of a Redis Cluster answers the cluster
// client's CLUSTER SLOTS in one of these words, whichever version and
// whatever the case the command was sent in; a command of another name
// it does not know is no such answer. A real Redis sends each text (a
// script's error reply), so that go-redis parses it as it parses the
// command's own.
func TestRefusesClusterReadsEveryWording(t *testing.T) {
	reply := errorReplies(t)
	for _, tt := range []struct {
		reply string
		want  bool
	}{
		{"ERR This instance has cluster support disabled", true},
		{"ERR unknown command 'cluster', with args beginning with: 'slots' ", true},
		{"ERR unknown command 'CLUSTER', with args beginning with: 'SLOTS' ", true},
		{"ERR unknown command `cluster`, with args beginning with: `slots`, ", true},
		{"ERR unknown command 'clusters', with args beginning with: ", false},
		{"ERR unknown command 'sentinel', with args beginning with: 'get-master-addr-by-name' ", false},
		{"LOADING Redis is loading the dataset in memory", false},
	} {
		if got := refusesCluster(reply(tt.reply)); got != tt.want {
			t.Errorf("refusesCluster(%q) = %t, want %t", tt.reply, got, tt.want)
		}
	}
}

// errorReplies returns a function that has a real Redis send text as an
// error reply (a script's), so that go-redis parses it as it parses a
// command's own. The client sends each once: go-redis sends again on
// LOADING, BUSY, MASTERDOWN and CLUSTERDOWN otherwise.
func errorReplies(t *testing.T) func(text string) error {
	t.Helper()
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return func(text string) error {
		t.Helper()
		reply := rdb.Eval(context.Background(), "return redis.error_reply(ARGV[1])", nil, text).Err()
		if reply == nil || reply.Error() != text {
			t.Fatalf("Redis answered %v, want the error %q", reply, text)
		}
		return reply
	}
}
