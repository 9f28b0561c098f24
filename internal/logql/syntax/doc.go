// Package syntax owns LogQL's grammar: a hand-written lexer and recursive
// descent parser (precedence climbing for binary operators), the abstract
// syntax tree with canonical String() printing, parse-time validation with
// Loki's error texts, a pretty printer for format_query, and the helpers the
// storage layer uses to push line filters down (LineFilters, Needles).
//
// The grammar is specified in grammar.md; every production there has exactly
// one parseX function of the same name in this package. The package depends
// only on internal/model, Prometheus' model packages and the standard
// library, so the agent, the ruler and the HTTP API can import it without
// pulling in storage or the engine.
//
// Every AST node is immutable once parsed and safe to share between
// goroutines; callers that want to rewrite a tree build new nodes.
package syntax
