package config

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SecretTypeAWSCredentials is a Secret whose file holds an AWS access key: lines of
// aws_access_key_id = ..., aws_secret_access_key = ... and optionally aws_session_token = ...,
// as in the default profile of an AWS credentials file. An aws Upstream names it to sign the
// Lambda invocations it carries.
const SecretTypeAWSCredentials = "awsCredentials"

// AWSUpstream is an AWS Lambda endpoint: routes with a lambda action invoke functions through
// it, signing each request with AWS Signature Version 4.
type AWSUpstream struct {
	// Region is the AWS region of the functions, such as us-east-1. Requests are signed for it,
	// and it picks the default endpoint, https://lambda.<region>.amazonaws.com.
	Region string `yaml:"region"`
	// AccountID is the 12-digit account that owns the functions; it lets routes name a function
	// by its name instead of its full ARN.
	AccountID string `yaml:"accountId,omitempty"`
	// Credentials sign the invocations: exactly one of secret and fromEnvironment.
	Credentials AWSCredentialsSource `yaml:"credentials"`
	// Endpoint replaces the default endpoint, for a Lambda-compatible service such as a local
	// emulator: http(s)://host[:port], nothing after the port. An https endpoint's certificate
	// is checked against the system's CA bundle unless options.tls says otherwise.
	Endpoint string `yaml:"endpoint,omitempty"`

	// SystemCAFile is the system's CA bundle, found at load time, that verifies an https
	// endpoint when options.tls is not set.
	SystemCAFile string `yaml:"-"`
}

// AWSCredentialsSource says where the keys that sign Lambda invocations come from.
type AWSCredentialsSource struct {
	// Secret names a Secret of type awsCredentials.
	Secret string `yaml:"secret,omitempty"`
	// FromEnvironment leaves the keys to Envoy's default AWS credential chain: the
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables portico was started
	// with, the AWS credentials file, then instance or task metadata.
	FromEnvironment bool `yaml:"fromEnvironment,omitempty"`
}

// The ways a route can invoke a Lambda function.
const (
	LambdaInvocationSync  = "sync"
	LambdaInvocationAsync = "async"
)

// LambdaDestination invokes an AWS Lambda function with each matching request.
type LambdaDestination struct {
	// Upstream names an Upstream of type aws: the region, endpoint and credentials.
	Upstream string `yaml:"upstream"`
	// Function is the function's ARN (arn:aws:lambda:<region>:<account>:function:<name>[:<alias
	// or version>]), or its name (optionally name:qualifier) when the Upstream sets accountId.
	Function string `yaml:"function"`
	// Invocation is sync (default: the client gets the function's result) or async (the
	// function is queued and the client gets 202 at once).
	Invocation string `yaml:"invocation,omitempty"`
	// PayloadPassthrough sends the request body to the function as it is. Default false: the
	// function gets a JSON document with the path, method, headers, query parameters and body.
	PayloadPassthrough bool `yaml:"payloadPassthrough,omitempty"`

	// ARN is the function's full ARN, built from Function at load time.
	ARN string `yaml:"-"`
}

// AWSKeys are the keys of an awsCredentials Secret as read at load time. The secret parts
// print, log and marshal as "[redacted]".
type AWSKeys struct {
	AccessKeyID     string
	SecretAccessKey RedactedString
	SessionToken    RedactedString
}

// AWSProfile names the profile under which Portico hands the keys of awsCredentials Secret
// secretName to Envoy, in the credentials file Envoy reads (see docs/security.md). The name
// changes with the keys, so that a route naming it changes too and Envoy reads the file again
// instead of keeping the keys it cached; a digest of random keys reveals nothing of them.
func AWSProfile(secretName string, k *AWSKeys) string {
	sum := sha256.Sum256([]byte(k.AccessKeyID + "\x00" + string(k.SecretAccessKey) + "\x00" + string(k.SessionToken)))
	return "portico-" + secretName + "-" + hex.EncodeToString(sum[:6])
}

// RedactedString is a secret value: it prints, logs and marshals as "[redacted]" whatever the
// verb or encoder; only an explicit string conversion reveals it.
type RedactedString string

// Format implements fmt.Formatter for every verb.
func (RedactedString) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (RedactedString) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler, which JSON and YAML encoders use.
func (RedactedString) MarshalText() ([]byte, error) { return []byte(redacted), nil }

var (
	// awsRegionRE matches region names such as us-east-1, eu-central-2 and us-gov-west-1.
	awsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	awsAccountRE = regexp.MustCompile(`^[0-9]{12}$`)
	// lambdaARNRE captures partition, region, account, function name and optional qualifier.
	lambdaARNRE      = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):lambda:([^:]*):([^:]*):function:([^:]*)(?::([^:]*))?$`)
	lambdaNameRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	lambdaQualiferRE = regexp.MustCompile(`^(\$LATEST|[A-Za-z0-9_-]{1,128})$`)
)

// lambdaInvocations lists the invocation modes, for validation and messages.
var lambdaInvocations = []string{LambdaInvocationSync, LambdaInvocationAsync}

// maxAWSCredentialsBytes bounds an awsCredentials file: three short lines.
const maxAWSCredentialsBytes = 64 << 10

// AWSPartition is the ARN partition of an AWS region.
func AWSPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// LambdaEndpoint is the endpoint an aws Upstream invokes functions at: its endpoint override,
// or the region's public one.
func (a *AWSUpstream) LambdaEndpoint() *url.URL {
	if a.Endpoint != "" {
		if u, err := url.Parse(a.Endpoint); err == nil {
			return u
		}
	}
	host := "lambda." + a.Region + ".amazonaws.com"
	if AWSPartition(a.Region) == "aws-cn" {
		host += ".cn"
	}
	return &url.URL{Scheme: "https", Host: host}
}

// systemCAFiles are where Linux distributions keep the system's CA bundle (the list Go's
// crypto/x509 reads too); SSL_CERT_FILE, when set, comes first.
var systemCAFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine
}

// systemCAFile returns the first system CA bundle that exists, or "".
func systemCAFile() string {
	for _, f := range append([]string{os.Getenv("SSL_CERT_FILE")}, systemCAFiles...) {
		if info, err := os.Stat(f); f != "" && err == nil && info.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

// checkAWSUpstream checks an aws Upstream's region, account, credentials and endpoint, and
// finds the CA bundle that verifies an https endpoint.
func (v *validator) checkAWSUpstream(s subject, a *AWSUpstream, tls *UpstreamTLS) {
	const p = "spec.aws"
	if s.src.valid(p+".region") && !awsRegionRE.MatchString(a.Region) {
		v.errorf(s, p+".region", "%q is not an AWS region; use a region name such as us-east-1", excerpt(a.Region))
	}
	if s.src.valid(p+".accountId") && !awsAccountRE.MatchString(a.AccountID) {
		v.errorf(s, p+".accountId", "%q is not an AWS account id; use the 12 digits, quoted so YAML keeps leading zeros", excerpt(a.AccountID))
	}
	if s.src.valid(p + ".credentials") {
		cp := p + ".credentials"
		hasSecret, hasEnv := s.src.has(cp+".secret"), s.src.has(cp+".fromEnvironment")
		switch {
		case hasSecret && hasEnv:
			v.errorf(s, cp, "set only one of secret, fromEnvironment")
		case hasSecret:
			v.checkSecretRef(s, cp+".secret", a.Credentials.Secret, SecretTypeAWSCredentials)
		case hasEnv && !a.Credentials.FromEnvironment:
			v.errorf(s, cp+".fromEnvironment", "fromEnvironment: false leaves no credentials; name a Secret of type %s with secret, or set fromEnvironment: true", SecretTypeAWSCredentials)
		case !hasEnv:
			v.errorf(s, cp, "no credentials; name a Secret of type %s with secret, or set fromEnvironment: true", SecretTypeAWSCredentials)
		}
	}
	if s.src.valid(p+".endpoint") && a.Endpoint != "" {
		if msg := endpointProblem(a.Endpoint); msg != "" {
			v.errorf(s, p+".endpoint", "%s", msg)
			return
		}
	}
	https := a.LambdaEndpoint().Scheme == "https"
	switch {
	case !https && tls != nil && s.src.valid(p+".endpoint"):
		v.errorf(s, p+".endpoint", "options.tls is set but the endpoint is plain http; use an https:// endpoint or remove options.tls")
	case https && tls == nil:
		if a.SystemCAFile = systemCAFile(); a.SystemCAFile == "" {
			v.errorf(s, p, "no system CA bundle found to verify %s (looked at SSL_CERT_FILE and %s); set options.tls.caFile", a.LambdaEndpoint().Host, strings.Join(systemCAFiles, ", "))
		}
	}
}

// endpointProblem explains why an endpoint override is unusable, or returns "".
func endpointProblem(endpoint string) string {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL; use http(s)://host[:port]", excerpt(endpoint))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q has scheme %q; use http:// or https://", excerpt(endpoint), excerpt(u.Scheme))
	case u.Hostname() == "":
		return fmt.Sprintf("%q names no host; use http(s)://host[:port]", excerpt(endpoint))
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q has more than a scheme, host and port; Envoy invokes functions at a path of its own, so remove the rest", excerpt(endpoint))
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || !validPort(n) {
			return fmt.Sprintf("%q has port %q; use 1-65535", excerpt(endpoint), excerpt(port))
		}
	}
	if _, isIP := parseIP(u.Hostname()); !isIP && !validHostname(u.Hostname()) {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name", excerpt(endpoint), excerpt(u.Hostname()))
	}
	return ""
}

// checkLambda checks a route's lambda action at p: its Upstream, function and invocation,
// and resolves the function's ARN.
func (v *validator) checkLambda(s subject, p string, l *LambdaDestination) {
	if !s.src.valid(p) {
		return
	}
	if s.src.valid(p+".invocation") && l.Invocation != "" && !slices.Contains(lambdaInvocations, l.Invocation) {
		v.errorf(s, p+".invocation", "unknown invocation %q; use %s%s", excerpt(l.Invocation),
			strings.Join(lambdaInvocations, " or "), didYouMean(l.Invocation, lambdaInvocations))
	}
	if !s.src.valid(p + ".upstream") {
		return
	}
	u := v.upstreams[l.Upstream]
	switch {
	case u == nil:
		v.errorf(s, p+".upstream", "%s", notDefined(KindUpstream, l.Upstream, v.upstreamNames))
		return
	case u.Spec.AWS == nil:
		v.errorf(s, p+".upstream", "Upstream %q (%s) is not an aws Upstream; a lambda action needs one with aws: {region, credentials}", excerpt(l.Upstream), u.Source.At("metadata.name"))
		return
	}
	if s.src.valid(p + ".function") {
		arn, msg := lambdaARN(l.Function, u.Spec.AWS)
		if msg != "" {
			v.errorf(s, p+".function", "%s", msg)
			return
		}
		l.ARN = arn
	}
}

// lambdaARN resolves a function name or ARN against its aws Upstream, or explains why it cannot.
func lambdaARN(function string, a *AWSUpstream) (string, string) {
	if strings.HasPrefix(function, "arn:") {
		m := lambdaARNRE.FindStringSubmatch(function)
		switch {
		case m == nil:
			return "", fmt.Sprintf("%q is not a Lambda function ARN; use arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>]", excerpt(function))
		case !awsRegionRE.MatchString(m[2]):
			return "", fmt.Sprintf("ARN %q: %q is not an AWS region", excerpt(function), excerpt(m[2]))
		case m[2] != a.Region:
			// Envoy signs for the ARN's region, the endpoint serves the Upstream's: AWS would
			// refuse every request.
			return "", fmt.Sprintf("ARN %q is in region %s but the Upstream is in %s; invoke it through an Upstream of its region", excerpt(function), m[2], a.Region)
		case m[1] != AWSPartition(a.Region):
			return "", fmt.Sprintf("ARN %q: partition %s does not hold region %s; use %s", excerpt(function), m[1], a.Region, AWSPartition(a.Region))
		case !awsAccountRE.MatchString(m[3]):
			return "", fmt.Sprintf("ARN %q: %q is not a 12-digit account id", excerpt(function), excerpt(m[3]))
		}
		if msg := functionNameProblem(m[4], m[5], strings.Count(function, ":") == 7); msg != "" {
			return "", fmt.Sprintf("ARN %q: %s", excerpt(function), msg)
		}
		return function, ""
	}
	name, qualifier, qualified := strings.Cut(function, ":")
	if msg := functionNameProblem(name, qualifier, qualified); msg != "" {
		return "", fmt.Sprintf("function %q: %s", excerpt(function), msg)
	}
	if a.AccountID == "" {
		return "", fmt.Sprintf("function %q is a name, not an ARN; give its full ARN, or set accountId on the Upstream", excerpt(function))
	}
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", AWSPartition(a.Region), a.Region, a.AccountID, function), ""
}

// functionNameProblem checks a function name and, when qualified, its alias or version.
func functionNameProblem(name, qualifier string, qualified bool) string {
	if !lambdaNameRE.MatchString(name) {
		return fmt.Sprintf("function name %q is not valid; use 1-64 letters, digits, '-' and '_'", excerpt(name))
	}
	if qualified && !lambdaQualiferRE.MatchString(qualifier) {
		return fmt.Sprintf("qualifier %q is not a version or alias; use $LATEST, a version number or an alias of letters, digits, '-' and '_'", excerpt(qualifier))
	}
	return ""
}

// checkAWSCredentialsSecret reads an awsCredentials Secret's file and keeps its keys in the
// Secret. Problems are reported at the file's line, never with the line's content.
func (v *validator) checkAWSCredentialsSecret(s subject, sec *Secret) {
	for _, f := range []string{"certFile", "keyFile", "caFile"} {
		if s.src.has("spec." + f) {
			v.errorf(s, "spec."+f, "%s is for Secrets of type %s; an %s Secret names its one file with file", f, SecretTypeTLS, SecretTypeAWSCredentials)
		}
	}
	if !s.src.has("spec.file") {
		v.errorf(s, "spec", "missing required field \"file\": the file of aws_access_key_id and aws_secret_access_key lines this Secret holds")
		return
	}
	data, ok := v.readFileField(s, "spec.file", sec.Spec.File)
	if !ok {
		return
	}
	if len(data) > maxAWSCredentialsBytes {
		v.errorf(s, "spec.file", "%s holds more than %d bytes; is it the right file?", sec.Spec.File, maxAWSCredentialsBytes)
		return
	}
	keys, problems := parseAWSCredentials(data)
	for _, pr := range problems {
		v.diags = append(v.diags, Diagnostic{
			Pos: Position{File: sec.Spec.File, Line: pr.line}, Severity: SeverityError,
			Kind: KindSecret, Name: sec.Metadata.Name, Field: "spec.file",
			Message: fmt.Sprintf("%s (in the %s file named at %s)", pr.message, SecretTypeAWSCredentials, sec.Source.At("spec.file")),
		})
	}
	if len(problems) == 0 {
		sec.Spec.AWS = keys
	}
}

// credentialProblem is a problem on one line of a credentials file.
type credentialProblem struct {
	line    int // 0: the file as a whole
	message string
}

// awsCredentialKeys are the keys an awsCredentials file may set.
var awsCredentialKeys = []string{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}

// parseAWSCredentials reads the key = value lines of an awsCredentials file. Blank lines,
// comments (# or ;) and a [default] profile header are skipped, so the default profile of an
// AWS credentials file can be used as it is. Messages never quote a value.
func parseAWSCredentials(data []byte) (*AWSKeys, []credentialProblem) {
	var problems []credentialProblem
	seen := map[string]int{}
	keys := &AWSKeys{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line == "[default]":
			continue
		case strings.HasPrefix(line, "["):
			problems = append(problems, credentialProblem{n, "only the [default] profile can be used; put the keys of one profile in this file"})
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			problems = append(problems, credentialProblem{n, "not a key = value line"})
			continue
		case !slices.Contains(awsCredentialKeys, key):
			problems = append(problems, credentialProblem{n, fmt.Sprintf("unknown key %q; use %s", excerpt(key), strings.Join(awsCredentialKeys, ", "))})
			continue
		case seen[key] != 0:
			problems = append(problems, credentialProblem{n, fmt.Sprintf("%s is already set on line %d", key, seen[key])})
			continue
		case value == "":
			problems = append(problems, credentialProblem{n, fmt.Sprintf("%s has no value", key)})
			continue
		}
		seen[key] = n
		switch key {
		case "aws_access_key_id":
			keys.AccessKeyID = value
		case "aws_secret_access_key":
			keys.SecretAccessKey = RedactedString(value)
		case "aws_session_token":
			keys.SessionToken = RedactedString(value)
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, credentialProblem{0, fmt.Sprintf("cannot be read: %v", err)})
	}
	for _, k := range awsCredentialKeys[:2] {
		if seen[k] == 0 && len(problems) == 0 {
			problems = append(problems, credentialProblem{0, fmt.Sprintf("no %s line; the file needs aws_access_key_id and aws_secret_access_key", k)})
		}
	}
	return keys, problems
}

// awsSecretFiles lists the files of every awsCredentials Secret: their keys are served to
// Envoy, so a change must be applied like a change of the configuration.
func (c *Config) awsSecretFiles() []string {
	var out []string
	for _, s := range c.Secrets {
		if s.Spec.Type == SecretTypeAWSCredentials && s.Spec.File != "" {
			out = append(out, s.Spec.File)
		}
	}
	return out
}

// checkNotLambdaUpstream refuses any use of an aws Upstream but a lambda action (a plain route,
// a split, a mirror, a TCP Gateway, an authorization or JWKS server): it would send requests
// unsigned to the Lambda endpoint.
func (v *validator) checkNotLambdaUpstream(s subject, p, name string) {
	if u := v.upstreams[name]; u != nil && u.Spec.AWS != nil && s.src.valid(p) {
		v.errorf(s, p, "Upstream %q (%s) is an AWS Lambda endpoint, which only a route's lambda action can use: lambda: {upstream: %s, function: <name or ARN>}", excerpt(name), u.Source.At("metadata.name"), excerpt(name))
	}
}

// lambdaExcludedOptions are route options that cannot apply to an invocation: Envoy sends it to
// the function's path on the endpoint's host, which the signature covers, and one function per
// route leaves nothing to hash or mirror.
var lambdaExcludedOptions = []string{"prefixRewrite", "regexRewrite", "hostRewrite", "autoHostRewrite", "hostRewriteHeader", "hashPolicy", "mirror"}

// checkLambdaRouteOptions refuses the options at op that a lambda route cannot honour.
func (v *validator) checkLambdaRouteOptions(s subject, op string) {
	for _, f := range lambdaExcludedOptions {
		if s.src.has(op + "." + f) {
			v.errorf(s, op+"."+f, "%s does not apply to a lambda route: Envoy invokes the function at its own path and host; remove it", f)
		}
	}
}
