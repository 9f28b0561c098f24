package engine

import (
	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// execLiteral evaluates metric queries. This build evaluates no metric
// queries over stored data yet; it answers with a clear 400.
func (e *Engine) execLiteral(p Params, expr syntax.Expr) (Result, error) {
	return Result{}, Userf("unsupported query: metric queries are not evaluated by this server yet: " + expr.String())
}
