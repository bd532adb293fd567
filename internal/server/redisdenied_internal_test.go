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
	opts, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	// Once: go-redis sends again on LOADING otherwise.
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	defer rdb.Close()
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
		reply := rdb.Eval(context.Background(), "return redis.error_reply(ARGV[1])", nil, tt.reply).Err()
		if reply == nil || reply.Error() != tt.reply {
			t.Fatalf("Redis answered %v, want the error %q", reply, tt.reply)
		}
		if got := refusesCluster(reply); got != tt.want {
			t.Errorf("refusesCluster(%q) = %t, want %t", tt.reply, got, tt.want)
		}
	}
}
