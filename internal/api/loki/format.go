package loki

import (
	"net/http"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

// formatQuery serves /loki/api/v1/format_query: the query pretty-printed
// (syntax.Prettify) as {"status":"success","data":"<query>"}. A query that
// does not parse is a 400 with the parse error. Unlike Loki it also
// formats selectors that are empty-compatible ({} or {app=~".*"}): they are
// well-formed, only not runnable by default.
func (a *API) formatQuery(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	q := r.Form.Get("query")
	if q == "" {
		writeError(w, http.StatusBadRequest, "query parameter is required")
		return
	}
	expr, err := syntax.Options{AllowEmptyCompatible: true}.ParseExpr(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]string{"status": "success", "data": syntax.Prettify(expr)})
}
