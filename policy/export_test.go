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
