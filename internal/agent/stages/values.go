package stages

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// toString converts an extracted value to a string the way Promtail does:
// numbers in their shortest decimal form, booleans as true/false. Anything
// else (nil from a JSON null or a JMESPath expression that matched nothing,
// nested values) is not convertible; stages then skip the value.
func toString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// toFloat converts an extracted value to a number as Promtail's metrics stage
// does: numbers as they are, booleans as 0/1, strings as a decimal number or
// else a Go duration in seconds ("0.5ms" is 0.0005).
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f, nil
		}
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("convert %q to a number: %w", x, err)
		}
		return d.Seconds(), nil
	}
	return math.NaN(), fmt.Errorf("convert %T to a number", v)
}
