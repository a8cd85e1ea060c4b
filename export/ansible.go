package export

import (
	"fmt"
	"io"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/ansible"
)

// AnsibleGroup returns the Ansible group name for a host's Group, as
// ansible.Group does: "", "all" and "ungrouped" give "ungrouped"; other
// characters than ASCII letters, digits and '_' become '_', and a leading
// digit gets a '_' in front. A name that is (or maps to) "_meta" is an
// error matching state.ErrInvalid.
func AnsibleGroup(group string) (string, error) {
	name, err := ansible.Group(group)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	return name, nil
}

// WriteInventoryList writes the hosts of v as an Ansible dynamic
// inventory script prints them for --list (see ansible.WriteList for the
// document), from one consistent snapshot, with secret-looking variables
// redacted when opts.Redact is set. A group name that cannot be mapped is
// an error matching state.ErrInvalid, and nothing is written. opts may be
// nil.
func WriteInventoryList(w io.Writer, v state.Viewer, opts *Options) error {
	if err := ansible.WriteList(w, v, ansibleOptions(opts)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// WriteInventoryHost writes the variables of the named host as an Ansible
// dynamic inventory script prints them for --host NAME (see
// ansible.WriteHost), redacted when opts.Redact is set. A host v does not
// hold is an error naming it, and nothing is written. opts may be nil.
func WriteInventoryHost(w io.Writer, v state.Viewer, name string, opts *Options) error {
	if err := ansible.WriteHost(w, v, name, ansibleOptions(opts)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func ansibleOptions(opts *Options) *ansible.Options {
	if opts.redact() {
		return &ansible.Options{Host: RedactHost}
	}
	return nil
}
