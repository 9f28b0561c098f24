// Package demo owns `ledgerlog demo`: a FinTech workload that stands in for
// a fleet of Rust services. It generates tracing_subscriber JSON log lines
// for payment-processor, payment-gateway, fraud-detection, kyc-service,
// ledger and auth, writes them to per-service files or pushes them to a
// Loki-compatible server, and keeps Prometheus metrics (with trace_id
// exemplars) that describe the same transactions. Scenarios switch the mix
// so that each alert of deploy/rules can be made to fire.
//
// Everything is deterministic for a seed: the same seed, start time, rate
// and scenario timeline give the same lines.
package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ledgerlog/ledgerlog/internal/model"
)

// Services are the services the demo plays, in a fixed order.
var Services = []string{"payment-processor", "payment-gateway", "fraud-detection", "kyc-service", "ledger", "auth"}

// Marker strings that alert rules search for. A line contains one only when
// it reports that condition: "ERROR" appears only in ERROR-level lines,
// "SUSPICIOUS" only in fraud-detection lines, "COMPLIANCE_VIOLATION" only in
// compliance incident lines.
const (
	MarkerError      = "ERROR"
	MarkerSuspicious = "SUSPICIOUS"
	MarkerCompliance = "COMPLIANCE_VIOLATION"
)

type weighted[T any] struct {
	v T
	w float64
}

func pick[T any](r *rand.Rand, items []weighted[T]) T {
	total := 0.0
	for _, it := range items {
		total += it.w
	}
	x := r.Float64() * total
	for _, it := range items {
		x -= it.w
		if x < 0 {
			return it.v
		}
	}
	return items[len(items)-1].v
}

var (
	serviceMix = []weighted[string]{
		{"payment-processor", 24}, {"payment-gateway", 20}, {"fraud-detection", 16},
		{"kyc-service", 10}, {"ledger", 16}, {"auth", 14},
	}
	levelsDefault      = []weighted[string]{{"INFO", 85}, {"DEBUG", 8}, {"WARN", 5}, {"ERROR", 2}}
	levelsProcessor    = []weighted[string]{{"INFO", 88}, {"DEBUG", 8}, {"WARN", 3}, {"ERROR", 1}}
	levelsProcessorBad = []weighted[string]{{"INFO", 60}, {"DEBUG", 4}, {"WARN", 6}, {"ERROR", 30}}
	levelsGatewayBad   = []weighted[string]{{"INFO", 76}, {"DEBUG", 4}, {"WARN", 8}, {"ERROR", 12}}
	currencies         = []weighted[string]{{"EUR", 45}, {"USD", 25}, {"GBP", 15}, {"CHF", 5}, {"JPY", 5}, {"SEK", 5}}
	countries          = []weighted[string]{
		{"DE", 20}, {"FR", 14}, {"GB", 14}, {"NL", 8}, {"ES", 8}, {"IT", 8}, {"US", 10},
		{"NG", 4}, {"BR", 4}, {"IN", 4}, {"AE", 3}, {"RU", 2}, {"CN", 1},
	}
	// countriesIncident is where a KYC failure wave comes from: a document
	// fraud ring working through a few countries.
	countriesIncident = []weighted[string]{{"NG", 50}, {"RU", 30}, {"BR", 15}, {"DE", 5}}
	targets           = map[string]string{
		"payment-processor": "payment_processor",
		"payment-gateway":   "payment_gateway::http",
		"fraud-detection":   "fraud_detection::scoring",
		"kyc-service":       "kyc_service::verification",
		"ledger":            "ledger::journal",
		"auth":              "auth_service::session",
	}
)

// Record is one generated log line with what it reports. The generator
// allocates each Record's strings anew, so a Record may be kept.
type Record struct {
	Timestamp int64        // Unix nanoseconds
	Service   string       // service label
	Level     string       // INFO, DEBUG, WARN or ERROR, as in the line
	Event     string       // fields.event
	Labels    model.Labels // service, environment, level (lower case), region
	Line      string       // the tracing JSON
	TraceID   string       // fields.trace_id; empty when the line has none
	Txn       *Txn         // set when the line reports a finished transaction
	Balance   *Balance     // set when the line reports a balance snapshot
}

// Txn is a finished transaction, the source of the transaction metrics.
type Txn struct {
	Status  string  // completed or failed
	Seconds float64 // processing time
}

// Balance is a ledger balance snapshot.
type Balance struct {
	Currency string
	Amount   float64
}

// Options configures a Generator. The zero value gives seed 0 in
// environment "prod", region "eu-west".
type Options struct {
	Seed        uint64
	Environment string // environment label (default prod)
	Region      string // region label (default eu-west)
}

// Generator makes log lines. It is not safe for concurrent use.
type Generator struct {
	r      *rand.Rand
	env    string
	region string
	labels map[string]model.Labels // by service + "\xff" + level
	traces [32]string              // recent trace IDs, reused across services
	nTrace int
	buf    []byte
	fbuf   []byte
	mules  [6]string // accounts of the fraud ring, fixed per seed
}

// NewGenerator returns a generator seeded with o.Seed.
func NewGenerator(o Options) *Generator {
	if o.Environment == "" {
		o.Environment = "prod"
	}
	if o.Region == "" {
		o.Region = "eu-west"
	}
	g := &Generator{
		r:      rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)),
		env:    o.Environment,
		region: o.Region,
		labels: map[string]model.Labels{},
	}
	for i := range g.mules {
		g.mules[i] = g.accID()
	}
	return g
}

// Environment is the environment label of every line.
func (g *Generator) Environment() string { return g.env }

// Baseline returns one line of background traffic under scenario s.
func (g *Generator) Baseline(ts int64, s Scenario) Record {
	service := pick(g.r, serviceMix)
	levels := levelsDefault
	switch {
	case service == "payment-processor" && s == ErrorSpike:
		levels = levelsProcessorBad
	case service == "payment-processor":
		levels = levelsProcessor
	case service == "payment-gateway" && s == ErrorSpike:
		levels = levelsGatewayBad
	}
	level := pick(g.r, levels)
	e := g.start(ts, service, level)
	switch service {
	case "payment-processor":
		g.processor(&e, s)
	case "payment-gateway":
		g.gateway(&e, s)
	case "fraud-detection":
		g.fraud(&e)
	case "kyc-service":
		g.kyc(&e)
	case "ledger":
		g.ledger(&e)
	default:
		g.auth(&e)
	}
	return g.finish(&e)
}

// Incident returns one incident line of scenario s; ok is false for
// scenarios without incident lines (normal, error-spike).
func (g *Generator) Incident(ts int64, s Scenario) (rec Record, ok bool) {
	var e entry
	switch s {
	case FraudBurst:
		e = g.start(ts, "fraud-detection", "WARN")
		g.fraudBurst(&e)
	case ComplianceViolation:
		service := []string{"ledger", "kyc-service", "payment-gateway"}[g.r.IntN(3)]
		e = g.start(ts, service, "ERROR")
		g.compliance(&e)
	case KYCFailures:
		level := "WARN"
		if g.r.IntN(5) == 0 {
			level = "ERROR"
		}
		e = g.start(ts, "kyc-service", level)
		g.kycFailure(&e, countriesIncident)
	default:
		return Record{}, false
	}
	return g.finish(&e), true
}

// entry is a line under construction.
type entry struct {
	rec  Record
	f    object
	span [2]string // span key and value; empty key: no span fields
	name string    // span name; empty: no span
}

func (g *Generator) start(ts int64, service, level string) entry {
	e := entry{rec: Record{Timestamp: ts, Service: service, Level: level}}
	e.f = newObject(g.fbuf[:0])
	return e
}

func (e *entry) event(msg, ev string) {
	e.f.str("message", msg)
	e.f.str("event", ev)
	e.rec.Event = ev
}

// trace sets the line's trace_id. Payment flows share trace IDs across
// services: a line joins a recent trace with probability join, otherwise it
// starts a new one.
func (g *Generator) trace(e *entry, join float64) {
	id := ""
	if g.nTrace > 0 && g.r.Float64() < join {
		n := min(g.nTrace, len(g.traces))
		id = g.traces[g.r.IntN(n)]
	} else {
		id = g.hex(32)
		g.traces[g.nTrace%len(g.traces)] = id
		g.nTrace++
	}
	e.f.str("trace_id", id)
	e.rec.TraceID = id
}

func (g *Generator) finish(e *entry) Record {
	fields := e.f.close()
	g.fbuf = fields
	o := newObject(g.buf[:0])
	o.str("timestamp", time.Unix(0, e.rec.Timestamp).UTC().Format("2006-01-02T15:04:05.000000Z"))
	o.str("level", e.rec.Level)
	o.raw("fields", fields)
	o.str("target", targets[e.rec.Service])
	if e.name != "" {
		s := newObject(nil)
		if e.span[0] != "" {
			s.str(e.span[0], e.span[1])
		}
		s.str("name", e.name)
		o.raw("span", s.close())
	}
	o.str("threadId", "ThreadId("+strconv.Itoa(1+g.r.IntN(16))+")")
	line := o.close()
	g.buf = line
	e.rec.Line = string(line)
	e.rec.Labels = g.streamLabels(e.rec.Service, e.rec.Level)
	return e.rec
}

func (g *Generator) streamLabels(service, level string) model.Labels {
	k := service + "\xff" + level
	if ls, ok := g.labels[k]; ok {
		return ls
	}
	ls := model.LabelsFromStrings(
		"environment", g.env,
		"level", LevelLabel(level),
		"region", g.region,
		"service", service,
	)
	g.labels[k] = ls
	return ls
}

// LevelLabel is the level label value for a tracing level: lower case, as
// the bench data and Grafana's level detection use.
func LevelLabel(level string) string {
	switch level {
	case "INFO":
		return "info"
	case "WARN":
		return "warn"
	case "ERROR":
		return "error"
	case "DEBUG":
		return "debug"
	case "TRACE":
		return "trace"
	}
	return level
}

// ---------- field values ----------

func (g *Generator) hex(n int) string {
	const h = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = h[g.r.IntN(16)]
	}
	return string(b)
}

func (g *Generator) txID() string   { return "tx-" + g.hex(8) + "-" + g.hex(8) }
func (g *Generator) accID() string  { return fmt.Sprintf("acc-%08d", g.r.IntN(5_000_000)) }
func (g *Generator) custID() string { return fmt.Sprintf("cust-%07d", g.r.IntN(2_000_000)) }
func (g *Generator) userID() string { return fmt.Sprintf("usr-%07d", g.r.IntN(3_000_000)) }
func (g *Generator) merchID() string {
	return fmt.Sprintf("mch-%05d", int(math.Floor(math.Pow(g.r.Float64(), 2)*20000)))
}
func (g *Generator) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 11+g.r.IntN(200), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

// amount is log-normal with median ~305 and P(amount > 10000) ~ 1%.
func (g *Generator) amount() float64 {
	v := math.Exp(5.72 + 1.5*g.r.NormFloat64())
	v = max(v, 0.5+g.r.Float64())
	v = min(v, 5_000_000-g.r.Float64()*1000)
	return math.Round(v*100) / 100
}

// riskScore is mostly low with a long tail to 1 (P(> 0.8) ~ 7%).
func (g *Generator) riskScore() float64 {
	u := g.r.Float64()
	return math.Round(u*u*u*1000) / 1000
}

// latency is log-normal around median (milliseconds).
func (g *Generator) latency(median float64) int64 {
	v := median * math.Exp(0.6*g.r.NormFloat64())
	return int64(math.Max(1, math.Round(v)))
}

func (g *Generator) oneOf(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// ---------- event catalog ----------

func (g *Generator) processor(e *entry, s Scenario) {
	f := &e.f
	tx := g.txID()
	e.name, e.span = "process_payment", [2]string{"transaction_id", tx}
	slow := 1.0
	if s == ErrorSpike {
		slow = 4
	}
	switch e.rec.Level {
	case "ERROR":
		switch g.r.IntN(3) {
		case 0:
			e.event("Payment transaction failed: upstream acquirer timeout", "transaction_failed")
			f.str("error_code", "ACQUIRER_TIMEOUT")
		case 1:
			e.event("Payment transaction failed: issuer declined", "transaction_failed")
			f.str("error_code", "ISSUER_DECLINED")
		default:
			e.event("Payment transaction failed: ledger write rejected", "transaction_failed")
			f.str("error_code", "LEDGER_REJECTED")
		}
		ms := g.latency(900 * slow)
		f.str("transaction_id", tx)
		f.str("account_id", g.accID())
		f.money("amount", g.amount())
		f.str("currency", pick(g.r, currencies))
		f.str("status", "failed")
		f.int("processing_time_ms", ms)
		g.trace(e, 0.6)
		e.rec.Txn = &Txn{Status: "failed", Seconds: float64(ms) / 1000}
	case "WARN":
		if g.r.IntN(2) == 0 {
			e.event("Payment processing slow, exceeding SLA", "sla_warning")
			f.str("transaction_id", tx)
			f.int("processing_time_ms", 500+g.latency(300*slow))
			f.int("threshold_ms", 500)
		} else {
			e.event("Retrying payment after transient failure", "payment_retry")
			f.str("transaction_id", tx)
			f.int("attempt", int64(2+g.r.IntN(3)))
			f.int("backoff_ms", int64(100*(1+g.r.IntN(8))))
		}
		g.trace(e, 0.6)
	case "DEBUG":
		e.event("Acquired idempotency lock", "lock_acquired")
		f.str("transaction_id", tx)
		f.int("lock_wait_ms", g.latency(2*slow))
	default:
		if g.r.IntN(100) < 55 {
			ms := g.latency(45 * slow)
			e.event("Payment transaction completed successfully", "transaction_completed")
			f.str("transaction_id", tx)
			f.str("account_id", g.accID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			f.str("transaction_type", "payment")
			f.str("status", "completed")
			f.int("processing_time_ms", ms)
			f.score("risk_score", g.riskScore())
			g.trace(e, 0.6)
			e.rec.Txn = &Txn{Status: "completed", Seconds: float64(ms) / 1000}
		} else {
			e.event("Processing payment transaction", "transaction_started")
			f.str("transaction_id", tx)
			f.str("account_id", g.accID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			f.str("transaction_type", "payment")
			f.str("payment_method", g.oneOf("card", "sepa_credit", "sepa_instant", "wallet", "ach"))
			g.trace(e, 0.3)
		}
	}
}

func (g *Generator) gateway(e *entry, s Scenario) {
	f := &e.f
	req := "req-" + g.hex(16)
	e.name, e.span = "http_request", [2]string{"request_id", req}
	slow := 1.0
	if s == ErrorSpike {
		slow = 3
	}
	switch e.rec.Level {
	case "ERROR":
		ms := g.latency(3000)
		e.event("Payment authorization failed: card network timeout", "authorization_failed")
		f.str("transaction_id", g.txID())
		f.int("http_status", 504)
		f.int("latency_ms", ms)
		f.money("amount", g.amount())
		f.str("currency", pick(g.r, currencies))
		g.trace(e, 0.3)
		e.rec.Txn = &Txn{Status: "failed", Seconds: float64(ms) / 1000}
	case "WARN":
		if g.r.IntN(2) == 0 {
			e.event("Rate limit approaching for merchant", "rate_limit_warning")
			f.str("merchant_id", g.merchID())
			f.int("current_rps", int64(80+g.r.IntN(20)))
			f.int("limit_rps", 100)
		} else {
			e.event("Strong customer authentication challenge required", "sca_challenge")
			f.str("transaction_id", g.txID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			g.trace(e, 0.3)
		}
	case "DEBUG":
		e.event("Request headers validated", "headers_validated")
		f.str("request_id", req)
		f.int("header_count", int64(8+g.r.IntN(12)))
	default:
		switch g.r.IntN(3) {
		case 0:
			e.event("Incoming payment request", "request_received")
			f.str("merchant_id", g.merchID())
			f.str("transaction_id", g.txID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			f.str("card_brand", g.oneOf("visa", "mastercard", "amex", "maestro"))
			f.str("client_ip", g.ip())
			g.trace(e, 0)
		case 1:
			ms := g.latency(120 * slow)
			e.event("Payment authorized", "authorization_approved")
			f.str("transaction_id", g.txID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			f.str("auth_code", g.hex(6))
			f.int("latency_ms", ms)
			g.trace(e, 0.7)
			e.rec.Txn = &Txn{Status: "completed", Seconds: float64(ms) / 1000}
		default:
			e.event("Request completed", "request_completed")
			f.str("request_id", req)
			f.str("path", g.oneOf("/v1/payments", "/v1/payments/capture", "/v1/refunds", "/v1/payments/status"))
			f.int("http_status", 200)
			f.int("latency_ms", g.latency(80*slow))
			g.trace(e, 0.7)
		}
	}
}

func (g *Generator) fraud(e *entry) {
	f := &e.f
	tx := g.txID()
	e.name, e.span = "score_transaction", [2]string{"transaction_id", tx}
	switch e.rec.Level {
	case "ERROR":
		e.event("Scoring model inference failed, falling back to rules", "model_error")
		f.str("transaction_id", tx)
		f.str("model_version", "gbm-2026.11.2")
		f.str("error", "inference deadline exceeded")
		g.trace(e, 0.7)
	case "WARN":
		rs := 0.8 + g.r.Float64()*0.2
		if g.r.IntN(2) == 0 {
			e.event("SUSPICIOUS activity detected: velocity check exceeded", "suspicious_activity")
			f.str("reason", "velocity")
		} else {
			e.event("SUSPICIOUS transaction flagged for manual review", "manual_review")
			f.str("reason", g.oneOf("geo_mismatch", "device_change", "mule_pattern", "high_amount"))
		}
		f.str("transaction_id", tx)
		f.str("account_id", g.accID())
		f.score("risk_score", math.Round(rs*1000)/1000)
		f.money("amount", g.amount())
		g.trace(e, 0.7)
	case "DEBUG":
		e.event("Model features computed", "features_computed")
		f.str("transaction_id", tx)
		f.int("feature_count", int64(120+g.r.IntN(40)))
		f.int("latency_ms", g.latency(6))
	default:
		e.event("Transaction risk assessment completed", "risk_assessed")
		f.str("transaction_id", tx)
		f.str("account_id", g.accID())
		f.score("risk_score", g.riskScore())
		f.int("rules_triggered", int64(g.r.IntN(4)))
		g.trace(e, 0.7)
	}
}

// fraudBurst is a mule ring moving money: a few accounts, high scores.
func (g *Generator) fraudBurst(e *entry) {
	f := &e.f
	tx := g.txID()
	e.name, e.span = "score_transaction", [2]string{"transaction_id", tx}
	if g.r.IntN(3) > 0 {
		e.event("SUSPICIOUS activity detected: velocity check exceeded", "suspicious_activity")
		f.str("reason", "velocity")
	} else {
		e.event("SUSPICIOUS transaction flagged for manual review", "manual_review")
		f.str("reason", "mule_pattern")
	}
	f.str("transaction_id", tx)
	f.str("account_id", g.mules[g.r.IntN(len(g.mules))])
	f.score("risk_score", math.Round((0.85+g.r.Float64()*0.15)*1000)/1000)
	f.money("amount", math.Round((9000+g.r.Float64()*990)*100)/100)
	f.str("currency", "EUR")
	g.trace(e, 0.5)
}

func (g *Generator) kyc(e *entry) {
	f := &e.f
	cust := g.custID()
	e.name, e.span = "verify_identity", [2]string{"customer_id", cust}
	switch e.rec.Level {
	case "ERROR", "WARN":
		g.kycFailure(e, countries)
		return
	case "DEBUG":
		e.event("Document OCR finished", "ocr_finished")
		f.str("customer_id", cust)
		f.int("duration_ms", g.latency(700))
	default:
		if g.r.IntN(2) == 0 {
			e.event("Identity verification started", "verification_started")
			f.str("customer_id", cust)
			f.str("document_type", g.oneOf("passport", "id_card", "driving_licence", "residence_permit"))
			f.str("country", pick(g.r, countries))
		} else {
			e.event("Identity verification passed", "verification_passed")
			f.str("customer_id", cust)
			f.str("country", pick(g.r, countries))
			f.str("provider", g.oneOf("onfido", "jumio", "idnow"))
			f.int("duration_ms", g.latency(2500))
		}
	}
	g.trace(e, 0)
}

// kycFailure writes a verification_failed line (WARN: a document problem;
// ERROR: a sanctions hit) with a country drawn from from.
func (g *Generator) kycFailure(e *entry, from []weighted[string]) {
	f := &e.f
	cust := g.custID()
	e.name, e.span = "verify_identity", [2]string{"customer_id", cust}
	if e.rec.Level == "ERROR" {
		e.event("Identity verification_failed: sanctions screening hit", "verification_failed")
		f.str("customer_id", cust)
		f.str("country", pick(g.r, from))
		f.str("reason", "sanctions_hit")
	} else {
		e.event("Identity verification_failed", "verification_failed")
		f.str("customer_id", cust)
		f.str("country", pick(g.r, from))
		f.str("reason", g.oneOf("document_expired", "face_mismatch", "address_unverified", "document_unreadable"))
	}
	f.str("provider", g.oneOf("onfido", "jumio", "idnow"))
	g.trace(e, 0)
}

func (g *Generator) ledger(e *entry) {
	f := &e.f
	j := "jrn-" + g.hex(12)
	e.name, e.span = "post_entry", [2]string{"journal_id", j}
	switch e.rec.Level {
	case "ERROR":
		e.event("Journal entry rejected: serialization conflict", "posting_failed")
		f.str("journal_id", j)
		f.str("error_code", "SERIALIZATION_FAILURE")
		f.int("retry_in_ms", int64(50*(1+g.r.IntN(10))))
		g.trace(e, 0.7)
	case "WARN":
		e.event("Reconciliation mismatch detected", "reconciliation_mismatch")
		f.str("account_id", g.accID())
		f.money("difference", math.Round(g.r.Float64()*10000)/100)
		f.str("currency", pick(g.r, currencies))
	case "DEBUG":
		e.event("Ledger batch committed", "batch_committed")
		f.int("batch_size", int64(1+g.r.IntN(256)))
		f.int("commit_ms", g.latency(4))
	default:
		if g.r.IntN(3) > 0 {
			e.event("Journal entry posted", "entry_posted")
			f.str("journal_id", j)
			f.str("debit_account", g.accID())
			f.str("credit_account", g.accID())
			f.money("amount", g.amount())
			f.str("currency", pick(g.r, currencies))
			g.trace(e, 0.7)
		} else {
			cur := pick(g.r, currencies)
			bal := math.Round((2e7+g.r.NormFloat64()*1e6)*100) / 100
			e.event("Balance snapshot updated", "balance_snapshot")
			f.str("account_id", "acc-pool-"+cur)
			f.money("balance", bal)
			f.str("currency", cur)
			e.rec.Balance = &Balance{Currency: cur, Amount: bal}
		}
	}
}

func (g *Generator) auth(e *entry) {
	f := &e.f
	u := g.userID()
	e.name, e.span = "authenticate", [2]string{"user_id", u}
	switch e.rec.Level {
	case "ERROR":
		e.event("Token validation failed: signature mismatch", "token_invalid")
		f.str("user_id", u)
		f.str("client_ip", g.ip())
		f.str("key_id", "kid-"+g.hex(6))
	case "WARN":
		e.event("Failed login attempt", "login_failed")
		f.str("user_id", u)
		f.int("attempts", int64(1+g.r.IntN(5)))
		f.str("client_ip", g.ip())
	case "DEBUG":
		e.event("Session cache hit", "session_cache_hit")
		f.str("user_id", u)
	default:
		if g.r.IntN(2) == 0 {
			e.event("User authenticated successfully", "login_succeeded")
			f.str("user_id", u)
			f.str("method", g.oneOf("password", "webauthn", "sso", "otp"))
			f.bool("mfa", g.r.IntN(10) < 8)
			f.str("client_ip", g.ip())
		} else {
			e.event("Access token issued", "token_issued")
			f.str("user_id", u)
			f.int("token_ttl_s", 900)
			f.str("scope", g.oneOf("payments:write", "accounts:read", "reports:read"))
		}
	}
	if g.r.IntN(2) == 0 {
		g.trace(e, 0)
	}
}

// compliance writes a COMPLIANCE_VIOLATION line for the entry's service.
func (g *Generator) compliance(e *entry) {
	f := &e.f
	tx := g.txID()
	e.name, e.span = "compliance_check", [2]string{"transaction_id", tx}
	switch e.rec.Service {
	case "ledger":
		e.event(MarkerCompliance+": transaction above AML reporting threshold without CTR filing", "compliance_violation")
		f.str("transaction_id", tx)
		f.str("account_id", g.accID())
		f.money("amount", 15000+float64(g.r.IntN(500000))/10)
		f.str("currency", "EUR")
		f.str("rule", "AML-CTR-10K")
	case "kyc-service":
		e.event(MarkerCompliance+": account activated before sanctions screening completed", "compliance_violation")
		f.str("transaction_id", tx)
		f.str("customer_id", g.custID())
		f.str("country", pick(g.r, countries))
		f.str("rule", "KYC-SCREEN-BEFORE-ACTIVATE")
	default:
		e.event(MarkerCompliance+": cross-border transfer without originator information", "compliance_violation")
		f.str("transaction_id", tx)
		f.money("amount", 1000+float64(g.r.IntN(9_000_000))/100)
		f.str("currency", pick(g.r, currencies))
		f.str("rule", "TRAVEL-RULE-R16")
	}
	g.trace(e, 0.5)
}
