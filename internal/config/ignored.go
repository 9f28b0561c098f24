package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ignored lists Loki configuration keys that Ledgerlog accepts but does not
// use, with the reason given in the warning. A key not listed here and not
// part of Config is an error. Paths are dot-separated; a listed key's whole
// subtree is ignored.
var ignored = map[string]string{
	"schema_config":                        "the block format needs no schema periods",
	"table_manager":                        "retention is applied by the compactor",
	"query_range":                          "queries are not cached or split by a frontend",
	"query_scheduler":                      "there is no separate scheduler",
	"frontend":                             "there is no separate query frontend",
	"frontend_worker":                      "there is no separate query frontend",
	"querier":                              "the querier is built in and reads head and blocks together",
	"analytics":                            "no usage reporting exists",
	"memberlist":                           "single node: no ring",
	"ingester_client":                      "single node: no ingester client",
	"index_gateway":                        "single node: no index gateway",
	"chunk_store_config":                   "no chunk cache",
	"pattern_ingester":                     "patterns are not precomputed",
	"bloom_build":                          "token blooms are part of the block format",
	"bloom_gateway":                        "token blooms are part of the block format",
	"tracing":                              "no tracing exporter",
	"operational_config":                   "not applicable",
	"server.grpc_listen_address":           "no gRPC server: everything is HTTP",
	"server.grpc_listen_port":              "no gRPC server: everything is HTTP",
	"server.grpc_server_max_recv_msg_size": "no gRPC server: everything is HTTP",
	"server.grpc_server_max_send_msg_size": "no gRPC server: everything is HTTP",
	"server.grpc_server_max_concurrent_streams":        "no gRPC server: everything is HTTP",
	"server.register_instrumentation":                  "metrics are always served on /metrics",
	"server.http_path_prefix":                          "not supported",
	"common.instance_addr":                             "single node: no ring",
	"common.replication_factor":                        "single node: data is written once, made durable by the WAL",
	"common.ring":                                      "single node: no ring",
	"common.storage":                                   "set storage_config.object_store.filesystem.dir (or common.path_prefix) instead",
	"common.compactor_address":                         "the compactor is built in",
	"storage_config.tsdb_shipper":                      "the block index replaces the TSDB index",
	"storage_config.boltdb_shipper":                    "the block index replaces the BoltDB index",
	"storage_config.filesystem":                        "set storage_config.object_store.filesystem.dir instead",
	"storage_config.use_thanos_objstore":               "the object store is always thanos-io/objstore",
	"ingester.lifecycler":                              "single node: no ring",
	"ingester.wal.replay_memory_ceiling":               "replay is bounded by checkpoints",
	"ingester.max_transfer_retries":                    "single node: no hand-over",
	"ingester.chunk_retain_period":                     "flushed data is queryable at once; nothing needs retaining",
	"ingester.concurrent_flushes":                      "flushes write whole blocks",
	"ingester.autoforget_unhealthy":                    "single node: no ring",
	"limits_config.max_cache_freshness_per_query":      "no results cache",
	"limits_config.split_queries_by_interval_override": "not supported",
	"limits_config.allow_deletes":                      "deletion API not available in this build",
	"limits_config.enforce_metric_name":                "removed in Loki 3",
	"compactor.delete_request_store":                   "deletion API not available in this build",
	"compactor.compactor_ring":                         "single node: no ring",
	"ruler.ring":                                       "single node: no ring",
	"ruler.enable_sharding":                            "single node: every rule group is evaluated here",
	"ruler.sharding_strategy":                          "single node: every rule group is evaluated here",
	"ruler.sharding_algo":                              "single node: every rule group is evaluated here",
	"ruler.wal":                                        "recording-rule samples are queued in memory; alert state is kept under rule_path",
	"ruler.wal_cleaner":                                "recording-rule samples are queued in memory; alert state is kept under rule_path",
	"ruler.evaluation":                                 "rules are always evaluated locally by the built-in engine",
	"ruler.enable_alertmanager_v2":                     "Alertmanager's v2 API is always used",
	"ruler.enable_alertmanager_discovery":              "Alertmanagers are listed in alertmanager_url",
	"ruler.alertmanager_refresh_interval":              "Alertmanagers are listed in alertmanager_url",
	"ruler.flush_period":                               "not applicable",
	"ruler.search_pending_for":                         "not applicable",
	"ruler.query_stats_enabled":                        "not applicable",
}

// decodeStrict decodes YAML into cfg, rejecting unknown keys, after
// removing the keys listed in ignored; each removed key yields one warning.
func decodeStrict(b []byte, cfg *Config) ([]string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	var warnings []string
	prune(root.Content[0], "", &warnings)
	sort.Strings(warnings)
	pruned, err := yaml.Marshal(&root)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(pruned))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		// Line numbers refer to the pruned document, which keeps the
		// original line numbers of the remaining keys only approximately;
		// name the key so the user can find it.
		return nil, err
	}
	return warnings, nil
}

func prune(n *yaml.Node, prefix string, warnings *[]string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if reason, ok := ignored[path]; ok {
			*warnings = append(*warnings, fmt.Sprintf("config key %s (line %d) is not used: %s", path, k.Line, reason))
			continue
		}
		if !strings.HasPrefix(path, "limits_config.") || v.Kind == yaml.MappingNode {
			prune(v, path, warnings)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}
