package policy

import "github.com/prometheus/client_golang/prometheus"

// Test hooks for package policy_test, which can't reach unexported fields.

// ReloadsCollector is lockbox_policy_reloads_total{result=result} of e.
func ReloadsCollector(e *Engine, result string) prometheus.Collector {
	return e.metrics.reloads.WithLabelValues(result)
}

// LoadedAtCollector is lockbox_policy_loaded_timestamp_seconds of e.
func LoadedAtCollector(e *Engine) prometheus.Collector { return e.metrics.loadedAt }

// DecisionsCollector is lockbox_policy_decisions_total{result=result} of e.
func DecisionsCollector(e *Engine, result string) prometheus.Collector {
	return e.metrics.memo.WithLabelValues(result)
}

// LastReloadCollector is lockbox_policy_last_reload_successful of e.
func LastReloadCollector(e *Engine) prometheus.Collector { return e.metrics.lastReloadOK }

// WatchPoll is one poll of Watch over e's directory, given the state the
// poll before it returned; it returns the state for the next poll. Tests
// drive the watcher with it, poll by poll, instead of by a ticker.
func WatchPoll(e *Engine, seen string) string { return e.reloadIfChanged(seen) }

// UnsettledPolls is how many polls in a row must read a directory that
// changed between their two readings before the engine says so.
const UnsettledPolls = unsettledPolls
