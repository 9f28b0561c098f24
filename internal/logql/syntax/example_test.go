package syntax_test

import (
	"fmt"

	"github.com/ledgerlog/ledgerlog/internal/logql/syntax"
)

func ExampleParseExpr() {
	e, err := syntax.ParseExpr(`sum by (host)(rate({job="mysql"}|="error"|json|duration>10s[1m]))`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e)
	for _, sel := range syntax.Selectors(e) {
		fmt.Printf("%q\n", syntax.Needles(sel))
	}

	_, err = syntax.ParseExpr(`{job="mysql"`)
	fmt.Println(err)
	// Output:
	// sum by (host) (rate({job="mysql"} |= "error" | json | duration > 10s [1m]))
	// ["error"]
	// parse error at line 1, col 13: syntax error: unexpected $end, expecting } or ,
}
