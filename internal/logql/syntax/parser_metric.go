package syntax

// parseMetricExpr is completed with the metric grammar.
func (p *parser) parseMetricExpr() (SampleExpr, error) {
	return nil, p.unexpected("{")
}
