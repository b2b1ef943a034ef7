package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// Pusher serves translated resources to Envoy; *xds.Server implements it.
type Pusher interface {
	Push(ctx context.Context, res *xds.Checked) (gen uint64, changed bool, err error)
	WaitACK(ctx context.Context, gen uint64) error
	Status() xds.Status
	SetInitialGeneration(gen uint64) error
}

var _ Pusher = (*xds.Server)(nil)

// ReadFunc reads the configuration files: config.ReadFiles bound to the user's paths, or the
// embedded demo.
type ReadFunc func() ([]config.SourceFile, error)

// Options configure a Controller.
type Options struct {
	Read   ReadFunc
	XDS    Pusher
	Logger *slog.Logger
	// StateDir is where the last known good configuration is kept; empty disables it.
	StateDir string
	// SourceID names where the files come from (their absolute paths, say). A last known good
	// configuration saved from another source is not served: it is some other configuration.
	SourceID string
	// Strict makes Start fail when the files are not valid as a whole, instead of serving the
	// last known good configuration or holding broken resources back.
	Strict bool
	// StepTimeout bounds the wait for Envoy at each make-before-break step. Default 10s.
	StepTimeout time.Duration
	// Preflight, when set, checks a reload's configuration against the machine before it is
	// pushed, given the configuration served now (nil before the first). An error, best
	// config.Diagnostics naming the resources at fault, rejects the whole change as invalid
	// files do: for example a new Gateway port that another process holds, which Envoy would
	// only reject later, in its own terms.
	Preflight func(prev, next *config.Config) error
	// Applying, when set, is told each configuration just before it is pushed to Envoy, and
	// the configuration Envoy keeps after it rejects one: the in-process services Envoy calls
	// (authentication) must know what the routes they serve refer to before Envoy has them.
	Applying func(cfg *config.Config)
	// Discovery, when set, finds the hosts of Upstreams that discover them at run time. Every
	// push carries the hosts it knows; call PushDiscovered when they change.
	Discovery Discoverer
}

// Controller owns what is configured now. Every change is validated first; what fails
// changes nothing in Envoy, and broken VirtualServices and RouteTables are held back on their
// own (see config.LoadIsolated). Reloads run one at a time; Status may be called at any time.
type Controller struct {
	o Options

	reloading sync.Mutex // serialises Start and Reload, so generations are pushed in order
	// decoded keeps the decoded files, so that a reload decodes only the files that changed.
	decoded *config.DecodeCache
	// following counts the goroutines waiting for Envoy's verdicts (see follow).
	following sync.WaitGroup

	mu sync.Mutex
	// current is the last configuration pushed; its generation is the one Portico wants served.
	current *applied
	// envoyHas is the last configuration Envoy acknowledged.
	envoyHas *applied
	// source says where current came from.
	source string
	// invalid is the whole-change failure of the files as they are now, nil when they load.
	invalid config.Diagnostics
	// nack is Envoy's rejection of current, with the resources it was pinned on.
	nack       *xds.NACKError
	nackedRefs []config.ResourceRef
	lastReload *ReloadStatus
	// lastFailure is the text of the last failure logged, so an identical one is not repeated.
	lastFailure string
	reloads     map[string]uint64
}

// applied is one pushed configuration.
type applied struct {
	plan *Plan
	gen  uint64
}

// New returns a Controller; call Start once, then Reload on every change.
func New(o Options) *Controller {
	if o.StepTimeout == 0 {
		o.StepTimeout = 10 * time.Second
	}
	return &Controller{o: o, decoded: config.NewDecodeCache(), reloads: map[string]uint64{}}
}

// Current returns the configuration Portico wants served, nil before Start.
func (c *Controller) Current() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == nil {
		return nil
	}
	return c.current.plan.Config
}

// Wait returns once every goroutine the Controller started has returned; they do when the
// context given to Start and Reload is done.
func (c *Controller) Wait() { c.following.Wait() }

// Start loads the configuration and pushes the first generation, numbering on from the last
// known good one. When the files are broken as a whole it serves the last known good
// configuration instead, loudly; with Strict, or without a last known good, it fails.
// Outcomes from Envoy are followed until ctx ends.
func (c *Controller) Start(ctx context.Context) (uint64, error) {
	c.reloading.Lock()
	defer c.reloading.Unlock()
	lg := c.readLastGood()
	if err := c.continueNumbering(lg); err != nil {
		return 0, err
	}
	var prev *config.Config
	if lg != nil {
		cfg, err := config.LoadFiles(lg.Files)
		if err != nil {
			c.o.Logger.Warn("the last known good configuration no longer loads; ignoring it", "error", err.Error())
			lg = nil
		}
		prev = cfg
	}
	plan, err := c.buildFromFiles(ctx, prev)
	source := SourceFiles
	switch {
	case err != nil && (c.o.Strict || lg == nil):
		return 0, err
	case err != nil:
		c.logFailure("the configuration files are invalid; serving the last known good configuration instead", err)
		c.o.Logger.Warn("serving the last known good configuration, not the files: fix them and save, or send SIGHUP",
			"generation", lg.Generation, "saved", lg.SavedAt.Format(time.RFC3339), "problems", err.Error())
		c.setInvalid(err)
		if plan, err = build(ctx, nil, nil, lg.Files, c.o.Discovery); err != nil {
			return 0, fmt.Errorf("last known good configuration: %w", err)
		}
		source = SourceLastGood
	case c.o.Strict && !plan.Complete():
		return 0, rejectionsError(plan.Rejected)
	}
	c.logRejections(plan)
	c.applying(plan.Config)
	gen, _, err := c.o.XDS.Push(ctx, plan.Checked)
	if err != nil {
		return 0, fmt.Errorf("push configuration: %w", err)
	}
	c.mu.Lock()
	c.current = &applied{plan: plan, gen: gen}
	c.source = source
	c.mu.Unlock()
	c.saveGeneration()
	c.following.Go(func() { c.follow(ctx, gen, false) })
	return gen, nil
}

// continueNumbering makes the next generation follow the last one of the previous run.
func (c *Controller) continueNumbering(lg *LastGood) error {
	if c.o.StateDir == "" {
		return nil
	}
	gen, err := readGeneration(c.o.StateDir)
	if err != nil {
		c.o.Logger.Warn("cannot read the last generation; numbering from the last known good configuration", "error", err.Error())
	}
	if lg != nil {
		gen = max(gen, lg.Generation)
	}
	if gen == 0 {
		return nil
	}
	return c.o.XDS.SetInitialGeneration(gen)
}

// saveGeneration records the newest generation the xDS server handed out.
func (c *Controller) saveGeneration() {
	if c.o.StateDir == "" {
		return
	}
	if err := writeGeneration(c.o.StateDir, c.o.XDS.Status().PushedGeneration); err != nil {
		c.o.Logger.Warn("cannot save the generation number", "error", err.Error())
	}
}

func (c *Controller) readLastGood() *LastGood {
	if c.o.StateDir == "" {
		return nil
	}
	lg, err := ReadLastGood(c.o.StateDir)
	if err != nil {
		c.o.Logger.Warn("cannot read the last known good configuration; ignoring it", "error", err.Error())
		return nil
	}
	if lg != nil && lg.Source != c.o.SourceID {
		c.o.Logger.Info("the last known good configuration in the state directory is from other configuration files; ignoring it",
			"saved_from", lg.Source, "now", c.o.SourceID)
		return nil
	}
	return lg
}

func (c *Controller) buildFromFiles(ctx context.Context, prev *config.Config) (*Plan, error) {
	files, err := c.o.Read()
	if err != nil {
		return nil, err
	}
	plan, err := build(ctx, c.decoded, prev, files, c.o.Discovery)
	if err == nil {
		c.o.Logger.Debug("configuration built", "files", len(files), "decoded", len(plan.Decoded))
	}
	return plan, err
}

// rejectionsError reports held-back resources as the configuration error they are.
func rejectionsError(rs []config.Rejection) error {
	var ds config.Diagnostics
	for _, r := range rs {
		ds = append(ds, r.Problems...)
	}
	return ds
}

// Reload reads the files again and applies them. A change that does not validate changes
// nothing in Envoy: it is logged (once, however often it is retried), counted and shown in
// Status. It returns the reload's result (one of the Result constants).
func (c *Controller) Reload(ctx context.Context) string {
	c.reloading.Lock()
	defer c.reloading.Unlock()
	c.mu.Lock()
	var prev *config.Config
	if c.current != nil {
		prev = c.current.plan.Config
	}
	c.mu.Unlock()
	plan, err := c.buildFromFiles(ctx, prev)
	if err != nil {
		c.logFailure("configuration change rejected, the previous configuration keeps serving", err)
		c.setInvalid(err)
		return c.record(ResultInvalid, 0, ProblemsOf(err))
	}
	if c.o.Preflight != nil {
		if err := c.o.Preflight(prev, plan.Config); err != nil {
			c.logFailure("configuration change rejected, the previous configuration keeps serving", err)
			c.setInvalid(err)
			return c.record(ResultInvalid, 0, ProblemsOf(err))
		}
	}
	c.setInvalid(nil)
	c.logRejections(plan)
	return c.apply(ctx, plan)
}

// apply pushes plan, make before break, and starts following Envoy's verdict.
func (c *Controller) apply(ctx context.Context, plan *Plan) string {
	c.mu.Lock()
	var serving xds.Resources
	if c.current != nil {
		serving = c.current.plan.Resources
	}
	c.mu.Unlock()
	c.applying(plan.Config)
	xs := c.o.XDS.Status()
	// Steps only make sense while Envoy is connected and has what is served; otherwise it
	// gets the final configuration in one piece when it (re)connects.
	if serving != nil && xs.Connected && xs.ACKedGeneration == xs.PushedGeneration {
		for _, step := range bridgeSteps(serving, plan.Resources) {
			if result, ok := c.pushStep(ctx, plan, step); !ok {
				return result
			}
		}
	}
	gen, changed, err := c.o.XDS.Push(ctx, plan.Checked)
	var nack *xds.NACKError
	switch {
	case errors.As(err, &nack):
		// Unchanged since Envoy rejected it: the rejection stands, nothing is sent.
		c.o.Logger.Debug("configuration unchanged since envoy rejected it, not pushed again", "rejected", nack.Generation)
		return c.record(ResultRejected, gen, nil)
	case err != nil:
		c.logFailure("push configuration failed, the previous configuration keeps serving", err)
		return c.record(ResultInvalid, 0, ProblemsOf(err))
	}
	result, problems := ResultApplied, []Problem(nil)
	switch {
	case !changed:
		// Held-back resources may be all that changed: their problems still belong here.
		result, problems = ResultUnchanged, rejectedProblems(plan.Rejected)
	case !plan.Complete():
		result, problems = ResultPartial, rejectedProblems(plan.Rejected)
	}
	// The served plan and the reload's result change together, so that a status read in
	// between never shows the new resources' states next to the previous reload's result.
	c.mu.Lock()
	c.current = &applied{plan: plan, gen: gen}
	c.source = SourceFiles
	c.nack, c.nackedRefs = nil, nil
	c.recordLocked(result, gen, problems)
	c.mu.Unlock()
	if changed {
		c.saveGeneration()
	} else {
		c.o.Logger.Info("configuration unchanged, nothing pushed", "generation", gen)
	}
	c.lastFailureReset(plan)
	// Even an unchanged push is followed: the files behind it may differ (a comment, a
	// resource no longer held back), and they become the last known good once Envoy has it.
	c.following.Go(func() { c.follow(ctx, gen, !changed) })
	return result
}

// pushStep pushes one make-before-break step and waits for Envoy to take it. It reports false
// when the change must stop there: Envoy rejected the step.
func (c *Controller) pushStep(ctx context.Context, plan *Plan, step xds.Resources) (string, bool) {
	checked, err := xds.Check(step)
	if err != nil {
		// The final push will meet the same problem and report it.
		c.o.Logger.Debug("make-before-break step not pushed", "error", err.Error())
		return "", true
	}
	gen, changed, err := c.o.XDS.Push(ctx, checked)
	if err != nil {
		// The final push will meet the same problem and report it.
		c.o.Logger.Debug("make-before-break step not pushed", "error", err.Error())
		return "", true
	}
	if !changed {
		return "", true
	}
	wctx, cancel := context.WithTimeout(ctx, c.o.StepTimeout)
	defer cancel()
	err = c.o.XDS.WaitACK(wctx, gen)
	var nack *xds.NACKError
	switch {
	case err == nil:
		// Envoy now has the step's resources. Until the change completes, the configuration
		// it was last fully given stays the reference for status and isolation.
		c.mu.Lock()
		if c.envoyHas != nil {
			c.envoyHas = &applied{plan: &Plan{Config: c.envoyHas.plan.Config, Files: c.envoyHas.plan.Files, Resources: step, Checked: checked}, gen: gen}
		}
		c.mu.Unlock()
		return "", true
	case errors.As(err, &nack):
		c.rejectedByEnvoy(plan.Config, nack)
		return c.record(ResultRejected, gen, nil), false
	default:
		c.o.Logger.Warn("envoy has not taken a make-before-break step in time; pushing the change anyway",
			"generation", gen, "waited", c.o.StepTimeout, "error", err.Error())
		return "", true
	}
}

// follow waits for Envoy's verdict on generation gen and records it, unless a newer
// generation has been pushed meanwhile (its own follow decides then). quiet skips the log
// line for a generation that was already applied.
func (c *Controller) follow(ctx context.Context, gen uint64, quiet bool) {
	err := c.o.XDS.WaitACK(ctx, gen)
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	if c.current == nil || c.current.gen != gen {
		c.mu.Unlock()
		return
	}
	cur := c.current
	c.mu.Unlock()
	var nack *xds.NACKError
	switch {
	case err == nil:
		if !quiet {
			c.o.Logger.Info("configuration applied", "generation", gen)
		}
		c.mu.Lock()
		c.envoyHas = cur
		c.mu.Unlock()
		c.saveLastGood(cur)
	case errors.As(err, &nack):
		c.rejectedByEnvoy(cur.plan.Config, nack)
		c.record(ResultRejected, gen, nil)
		c.saveGeneration() // the rollback is a generation too
	default:
		c.o.Logger.Warn("cannot follow envoy's verdict on the configuration", "generation", gen, "error", err.Error())
	}
}

// rejectedByEnvoy records Envoy's NACK of the configuration cfg. The xDS server has restored
// the last good configuration; the rejected one is not sent again until it changes.
func (c *Controller) rejectedByEnvoy(cfg *config.Config, nack *xds.NACKError) {
	refs := nackedResources(nack, cfg)
	c.o.Logger.Error("envoy rejected the configuration, the last good configuration keeps serving",
		"generation", nack.Generation, "resources", refNames(refs), "envoy_error", nack.Message)
	c.mu.Lock()
	c.nack, c.nackedRefs = nack, refs
	var kept *config.Config
	if c.envoyHas != nil {
		// Isolation of the next change must fall back to what Envoy really serves.
		// The xDS server has restored what Envoy had; the next change starts from there.
		c.current = &applied{plan: &Plan{Config: c.envoyHas.plan.Config, Files: c.envoyHas.plan.Files,
			Rejected: c.current.plan.Rejected, Resources: c.envoyHas.plan.Resources, Checked: c.envoyHas.plan.Checked}, gen: c.current.gen}
		kept = c.envoyHas.plan.Config
	}
	c.mu.Unlock()
	if kept != nil {
		c.applying(kept)
	}
}

// applying tells Options.Applying about cfg.
func (c *Controller) applying(cfg *config.Config) {
	if c.o.Applying != nil {
		c.o.Applying(cfg)
	}
}

func refNames(refs []config.ResourceRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Kind + "/" + r.Name
	}
	return out
}

// saveLastGood persists the files behind an acknowledged configuration, if they are served as
// written: a partially applied change is not a configuration that ever existed on disk.
func (c *Controller) saveLastGood(a *applied) {
	if c.o.StateDir == "" || !a.plan.Complete() || a.plan.Files == nil {
		return
	}
	lg := &LastGood{Generation: a.gen, SavedAt: time.Now().UTC(), Source: c.o.SourceID, Files: a.plan.Files}
	if err := writeLastGood(c.o.StateDir, lg); err != nil {
		c.o.Logger.Warn("cannot save the last known good configuration", "error", err.Error())
	}
}

func (c *Controller) setInvalid(err error) {
	var ds config.Diagnostics
	if err != nil && !errors.As(err, &ds) {
		ds = config.Diagnostics{{Severity: config.SeverityError, Message: err.Error()}}
	}
	c.mu.Lock()
	c.invalid = ds
	c.mu.Unlock()
}

// record counts a reload's result and keeps it for Status.
func (c *Controller) record(result string, gen uint64, problems []Problem) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recordLocked(result, gen, problems)
	return result
}

// recordLocked is record with c.mu held.
func (c *Controller) recordLocked(result string, gen uint64, problems []Problem) {
	c.reloads[result]++
	c.lastReload = &ReloadStatus{Time: time.Now().UTC(), Result: result, Generation: gen, Problems: problems}
}

func rejectedProblems(rs []config.Rejection) []Problem {
	var out []Problem
	for _, r := range rs {
		out = append(out, diagnosticProblems(r.Problems)...)
	}
	return out
}

// logFailure logs err under msg, unless it is exactly the failure logged last: an editor that
// saves the same broken file again, or a SIGHUP, must not repeat a screenful of errors.
func (c *Controller) logFailure(msg string, err error) {
	c.mu.Lock()
	repeat := err.Error() == c.lastFailure
	c.lastFailure = err.Error()
	c.mu.Unlock()
	if repeat {
		c.o.Logger.Debug("configuration still has the problems logged before", "problems", len(ProblemsOf(err)))
		return
	}
	LogError(c.o.Logger, msg, err)
}

// logRejections logs the resources a plan holds back, once per distinct set of problems.
func (c *Controller) logRejections(plan *Plan) {
	if plan.Complete() {
		return
	}
	err := rejectionsError(plan.Rejected)
	c.mu.Lock()
	repeat := err.Error() == c.lastFailure
	c.lastFailure = err.Error()
	c.mu.Unlock()
	if repeat {
		return
	}
	for _, r := range plan.Rejected {
		what := "it is not served"
		if r.Kept {
			what = "its previous version keeps serving"
		}
		c.o.Logger.Error("resource rejected; the rest of the change is applied", "kind", r.Kind, "name", r.Name, "outcome", what)
		for _, d := range r.Problems {
			c.o.Logger.Error("configuration error", "at", d.Pos.String(), "problem", d.Error())
		}
	}
}

// lastFailureReset forgets the logged failure once a plan loads cleanly, so that the same
// mistake made again later is logged again.
func (c *Controller) lastFailureReset(plan *Plan) {
	if !plan.Complete() {
		return
	}
	c.mu.Lock()
	c.lastFailure = ""
	c.mu.Unlock()
}

// Status reports what is configured, what Envoy has, and every resource's state.
func (c *Controller) Status() Status {
	xs := c.o.XDS.Status()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		Envoy:      EnvoyStatus{Connected: xs.Connected},
		Generation: GenerationStatus{Served: xs.PushedGeneration, ACKed: xs.ACKedGeneration},
		Source:     c.source,
		Reloads:    maps.Clone(c.reloads),
	}
	if xs.LastNACK != nil {
		st.Envoy.LastRejection = xs.LastNACK.Error()
	}
	if c.lastReload != nil {
		lr := *c.lastReload
		st.LastReload = &lr
	}
	var served *config.Config
	var rejected []config.Rejection
	if c.current != nil {
		st.Generation.Current = c.current.gen
		served, rejected = c.current.plan.Config, c.current.plan.Rejected
	}
	var nackMessage string
	if c.nack != nil {
		nackMessage = c.nack.Message
	}
	st.Resources = resourceStatuses(served, rejected, c.invalid, c.nackedRefs, nackMessage)
	st.Ready, st.NotReadyReason = readiness(xs, st.Generation.Current, c.nack)
	return st
}

// LogError logs err under msg; a configuration error becomes one record per problem, so each
// file:line stands on its own line of the log.
func LogError(logger *slog.Logger, msg string, err error) {
	var ds config.Diagnostics
	if !errors.As(err, &ds) {
		logger.Error(msg, "error", err.Error())
		return
	}
	logger.Error(msg, "problems", len(ds))
	for _, d := range ds {
		logger.Error("configuration error", "at", d.Pos.String(), "problem", d.Error())
	}
}
