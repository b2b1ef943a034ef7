package config

// Defaults for fields the user may leave out. They are applied only when a field is absent, so
// that an explicit but empty value (`bindAddress: ""`) is still reported as a mistake.
const (
	DefaultBindAddress = "0.0.0.0"
	DefaultDomain      = "*"
)

func applyDefaults(cfg *Config) {
	for _, g := range cfg.Gateways {
		if !g.Source.has("spec.bindAddress") {
			g.Spec.BindAddress = DefaultBindAddress
		}
	}
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.has("spec.domains") {
			vs.Spec.Domains = []string{DefaultDomain}
		}
	}
}
