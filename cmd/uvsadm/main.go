// Command uvsadm administers uvsd with ipvsadm's command line and output.
//
//	uvsadm [--control PATH] ipvsadm-arguments...
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/ipvsadm"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// splitControl takes uvsadm's own --control option out of the arguments.
func splitControl(args []string) (path string, rest []string, err error) {
	path = control.DefaultPath
	if env := os.Getenv("UVS_CONTROL"); env != "" {
		path = env
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--control":
			if i+1 >= len(args) {
				return "", nil, errors.New("--control needs a path")
			}
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "--control="):
			path = strings.TrimPrefix(a, "--control=")
		default:
			rest = append(rest, a)
		}
	}
	return path, rest, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	path, args, err := splitControl(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cmd, err := ipvsadm.Parse(args)
	if err != nil {
		return fail(stderr, err)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	switch cmd.Kind {
	case ipvsadm.CmdHelp:
		_ = ipvsadm.WriteUsage(out, "uvsadm")
		return 0
	case ipvsadm.CmdVersion:
		_ = ipvsadm.WriteVersion(out)
		return 0
	}
	c, err := control.Dial(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer c.Close()
	if cmd.Kind == ipvsadm.CmdRestore {
		cmds, err := ipvsadm.ParseRestore(stdin)
		if err != nil {
			return fail(stderr, err)
		}
		for _, rc := range cmds {
			if code := do(c, rc, out, stderr); code != 0 {
				return code
			}
		}
		return 0
	}
	return do(c, cmd, out, stderr)
}

func do(c *control.Client, cmd *ipvsadm.Command, out io.Writer, stderr io.Writer) int {
	req, ok := cmd.Request()
	if !ok {
		fmt.Fprintf(stderr, "uvsadm: %v is not supported here\n", cmd.Kind)
		return 2
	}
	resp, err := c.Do(&req)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch {
	case cmd.Kind == ipvsadm.CmdSave:
		err = ipvsadm.WriteSave(out, resp.Services, cmd.List.Numeric)
	case cmd.Kind == ipvsadm.CmdGetLAddr:
		err = ipvsadm.WriteLocalAddrs(out, resp.Services)
	case cmd.Kind != ipvsadm.CmdList:
	case cmd.Conns:
		err = ipvsadm.WriteConns(out, resp.Conns, cmd.List)
	case cmd.ShowTimeouts:
		err = ipvsadm.WriteTimeouts(out, *resp.Timeouts)
	case cmd.HasService:
		for _, s := range resp.Services {
			if err = ipvsadm.WriteService(out, s, cmd.List); err != nil {
				break
			}
		}
	default:
		info := control.Info{Version: "1.2.1", ConnSize: 4096}
		if resp.Info != nil {
			info = *resp.Info
		}
		err = ipvsadm.WriteList(out, info, resp.Services, cmd.List)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func fail(stderr io.Writer, err error) int {
	var e *ipvsadm.Error
	if errors.As(err, &e) {
		fmt.Fprintln(stderr, e.Msg)
		return e.Status
	}
	fmt.Fprintln(stderr, err)
	return 2
}
