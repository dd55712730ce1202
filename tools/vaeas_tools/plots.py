"""matplotlib, set up once: the Agg backend (no display on a cluster node) and one error when it is missing."""
import sys


def pyplot(required=True, who="vaeas_tools"):
    """matplotlib.pyplot with the Agg backend. When matplotlib is missing: exits with a message naming the
    package that provides it if `required`, else prints that the pictures are skipped and returns None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError as e:
        msg = (f"{who}: matplotlib is missing ({e}); scripts/setup.sh installs it "
               "(apt python3-matplotlib, or python3 -m pip install matplotlib)")
        if required:
            sys.exit(msg)
        print(msg + ": pictures skipped, tables only", file=sys.stderr)
        return None


def save(fig, path, dpi=90):
    """Writes a figure atomically (a reader never sees half a PNG) and closes it."""
    import os
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)
    import matplotlib.pyplot as plt
    plt.close(fig)
