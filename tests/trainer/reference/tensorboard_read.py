"""Reads a TensorBoard event file back with the `tensorboard` package itself,
for clinrl's tests (the reference is TensorBoard, not code written here).

  tensorboard_read.py EVENTS_FILE

Two passes, both tensorboard's own code:
1. Framing: tensorboard's record reader (the one TensorBoard uses when
   TensorFlow is absent) walks every record and checks both masked CRC-32Cs;
   each record must parse as tensorboard's `Event` proto with no field the
   schema does not know. A bad CRC, a truncated record or an unknown field
   exits non-zero. (This pass is needed because EventAccumulator stops
   quietly at a corrupt record, as TensorBoard does on a file still being
   written.)
2. Content: EventAccumulator (size_guidance 0: keep everything) gives the
   scalars (Scalars(tag)) and the text plugin's summaries (tags from
   PluginTagToContent("text"), values from Tensors(tag)), each text also
   rendered by the text plugin's own Markdown-to-HTML.

Prints JSON: {"records": N, "file_version": "brain.Event:2",
"scalars": [[step, tag, value]...], "texts": [[step, tag, text, html]...]}.
Tensorboard is installed into the venv by launch/setup
(launch/requirements.txt).
"""
import json
import sys

try:
    from google.protobuf import unknown_fields
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    from tensorboard.plugins.text import text_plugin
    from tensorboard.util import tensor_util
except ImportError as e:
    raise SystemExit("tensorboard_read.py: cannot import the tensorboard "
                     "package (%s); launch/setup installs it into the venv "
                     "from launch/requirements.txt" % e)


def unknown_field_paths(message, path):
    """Paths of fields in `message` (recursively) that its schema lacks: a
    field number the writer got wrong would otherwise be dropped silently."""
    found = ["%s.<field %d>" % (path, f.field_number)
             for f in unknown_fields.UnknownFieldSet(message)]
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue  # no submessage, or a map (none in what clinrl writes)
        if not field.is_repeated:
            found += unknown_field_paths(value, "%s.%s" % (path, field.name))
            continue
        for i, item in enumerate(value):
            found += unknown_field_paths(item, "%s.%s[%d]" % (path, field.name, i))
    return found


def check_framing(path):
    """Returns (record count, file_version); exits on any framing error."""
    reader = pywrap_tensorflow.PyRecordReader_New(path, 0, None, None)
    count = 0
    file_version = None
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        except errors.DataLossError as e:
            raise SystemExit("tensorboard's record reader rejects %s after %d "
                             "good records: %s" % (path, count, e.message))
        event = event_pb2.Event.FromString(reader.record())
        unknown = unknown_field_paths(event, "event")
        if unknown:
            raise SystemExit("record %d of %s has fields tensorboard's Event "
                             "schema does not know: %s"
                             % (count, path, ", ".join(unknown)))
        if event.HasField("file_version"):
            file_version = event.file_version
        count += 1
    return count, file_version


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: tensorboard_read.py EVENTS_FILE")
    path = sys.argv[1]
    records, file_version = check_framing(path)
    acc = event_accumulator.EventAccumulator(
        path, size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    scalars = []
    for tag in acc.Tags()[event_accumulator.SCALARS]:
        scalars += [[e.step, tag, e.value] for e in acc.Scalars(tag)]
    texts = []
    try:
        text_tags = acc.PluginTagToContent("text")
    except KeyError:  # the accumulator's way of saying: no text summaries
        text_tags = {}
    for tag in text_tags:
        for e in acc.Tensors(tag):
            array = tensor_util.make_ndarray(e.tensor_proto)
            text = array.item().decode("utf-8")
            html = text_plugin.text_array_to_html(array, enable_markdown=True)
            texts.append([e.step, tag, text, html])
    print(json.dumps({"records": records, "file_version": file_version,
                      "scalars": sorted(scalars), "texts": sorted(texts)}))


if __name__ == "__main__":
    main()
