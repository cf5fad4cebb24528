"""The `keras-eca` command line: parses arguments, calls the library, prints."""

import argparse
import sys


def _demo(args):
    from keras_eca import demo

    print(
        f"keras_eca demo: {args.backbone} with every attention type, "
        f"{args.image_size}x{args.image_size} random input, offline."
    )
    rows = demo.attention_overhead(
        args.backbone, image_size=args.image_size, batch_size=args.batch_size
    )
    print(demo.format_table(rows, args.backbone))


def _list_attention(args):
    from keras_eca import layers

    for name in layers.list_attention():
        cls, defaults = layers.attention_defaults(name)
        extra = f" {defaults}" if defaults else ""
        print(f"{name:<10} {cls.__name__}{extra}")


def _list_models(args):
    from keras_eca import applications

    for name in applications.list_models(args.pattern):
        print(name)


def _summary(args):
    from keras_eca import applications
    from keras_eca import complexity

    unknown = [n for n in args.models if n not in applications.list_models()]
    if unknown:
        raise SystemExit(
            f"keras-eca summary: unknown model(s) {unknown}; see "
            "`keras-eca list-models`."
        )
    rows = complexity.summary_table(args.models, image_size=args.image_size)
    print(complexity.format_summary(rows, image_size=args.image_size))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-eca",
        description="ECA-Net, SE and Shuffle Attention for Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="build a backbone with each attention type and run it"
    )
    demo.add_argument("--backbone", default="resnet50")
    demo.add_argument("--image-size", type=int, default=224)
    demo.add_argument("--batch-size", type=int, default=1)
    demo.set_defaults(run=_demo)

    listing = commands.add_parser("list-attention", help="print attention names")
    listing.set_defaults(run=_list_attention)

    models = commands.add_parser("list-models", help="print model names")
    models.add_argument("pattern", nargs="?", default=None, help="e.g. '*eca*'")
    models.set_defaults(run=_list_models)

    summary = commands.add_parser(
        "summary",
        help="print parameters, MACs, the ECA paper's FLOPs and the "
        "attention overhead of models",
    )
    summary.add_argument(
        "models", nargs="+", help="registry names, e.g. resnet50"
    )
    summary.add_argument("--image-size", type=int, default=224)
    summary.set_defaults(run=_summary)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
