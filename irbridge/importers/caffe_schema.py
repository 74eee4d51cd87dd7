"""irbridge's own subset of Caffe's caffe.proto, written from Caffe's published field numbers.

No protoc step: the schema is a table below, turned into protobuf message classes at import
(descriptor_pb2 + message_factory), so both the text prototxt (text_format) and the binary
.caffemodel parse with it. Fields irbridge does not read (fillers, lr_mult, data sources...)
are simply left out: the parsers skip them.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
T = {"int32": F.TYPE_INT32, "int64": F.TYPE_INT64, "uint32": F.TYPE_UINT32, "float": F.TYPE_FLOAT,
     "double": F.TYPE_DOUBLE, "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES}

# message -> [(label, type or message/enum name, field name, number, default)]
MESSAGES = {
    "BlobShape": [(REP, "int64", "dim", 1, None)],
    "BlobProto": [(OPT, "BlobShape", "shape", 7, None), (REP, "float", "data", 5, None),
                  (REP, "double", "double_data", 8, None), (OPT, "int32", "num", 1, None),
                  (OPT, "int32", "channels", 2, None), (OPT, "int32", "height", 3, None),
                  (OPT, "int32", "width", 4, None)],
    "NetStateRule": [(OPT, "Phase", "phase", 1, None)],
    "NetParameter": [(OPT, "string", "name", 1, None), (REP, "string", "input", 3, None),
                     (REP, "BlobShape", "input_shape", 8, None), (REP, "int32", "input_dim", 4, None),
                     (REP, "LayerParameter", "layer", 100, None), (REP, "V1LayerParameter", "layers", 2, None)],
    "LayerParameter": [
        (OPT, "string", "name", 1, None), (OPT, "string", "type", 2, None), (REP, "string", "bottom", 3, None),
        (REP, "string", "top", 4, None), (OPT, "Phase", "phase", 10, None), (REP, "BlobProto", "blobs", 7, None),
        (REP, "NetStateRule", "include", 8, None), (REP, "NetStateRule", "exclude", 9, None),
        (OPT, "ConcatParameter", "concat_param", 104, None),
        (OPT, "ConvolutionParameter", "convolution_param", 106, None),
        (OPT, "DropoutParameter", "dropout_param", 108, None),
        (OPT, "EltwiseParameter", "eltwise_param", 110, None),
        (OPT, "InnerProductParameter", "inner_product_param", 117, None),
        (OPT, "LRNParameter", "lrn_param", 118, None), (OPT, "PoolingParameter", "pooling_param", 121, None),
        (OPT, "ReLUParameter", "relu_param", 123, None), (OPT, "SoftmaxParameter", "softmax_param", 125, None),
        (OPT, "PythonParameter", "python_param", 130, None),
        (OPT, "FlattenParameter", "flatten_param", 135, None),
        (OPT, "BatchNormParameter", "batch_norm_param", 139, None),
        (OPT, "ScaleParameter", "scale_param", 142, None), (OPT, "InputParameter", "input_param", 143, None),
        (OPT, "ExpParameter", "exp_param", 111, None), (OPT, "PowerParameter", "power_param", 122, None),
        (OPT, "PReLUParameter", "prelu_param", 131, None), (OPT, "ReshapeParameter", "reshape_param", 133, None),
        (OPT, "LogParameter", "log_param", 134, None), (OPT, "ELUParameter", "elu_param", 140, None),
        (OPT, "SliceParameter", "slice_param", 126, None), (OPT, "CropParameter", "crop_param", 144, None),
        (OPT, "ArgMaxParameter", "argmax_param", 101, None), (OPT, "BiasParameter", "bias_param", 141, None),
        (OPT, "PermuteParameter", "permute_param", 202, None),  # the SSD fork's number
    ],
    # the legacy V1 format (`layers { type: CONVOLUTION ... }`), as many classic caffemodels use
    "V1LayerParameter": [
        (REP, "string", "bottom", 2, None), (REP, "string", "top", 3, None), (OPT, "string", "name", 4, None),
        (OPT, "V1LayerType", "type", 5, None), (REP, "BlobProto", "blobs", 6, None),
        (REP, "NetStateRule", "include", 32, None), (REP, "NetStateRule", "exclude", 33, None),
        (OPT, "ConcatParameter", "concat_param", 9, None),
        (OPT, "ConvolutionParameter", "convolution_param", 10, None),
        (OPT, "DropoutParameter", "dropout_param", 12, None),
        (OPT, "EltwiseParameter", "eltwise_param", 24, None),
        (OPT, "InnerProductParameter", "inner_product_param", 17, None),
        (OPT, "LRNParameter", "lrn_param", 18, None), (OPT, "PoolingParameter", "pooling_param", 19, None),
        (OPT, "ReLUParameter", "relu_param", 30, None), (OPT, "SoftmaxParameter", "softmax_param", 39, None),
        (OPT, "ArgMaxParameter", "argmax_param", 23, None), (OPT, "PowerParameter", "power_param", 21, None),
        (OPT, "SliceParameter", "slice_param", 31, None), (OPT, "ExpParameter", "exp_param", 41, None),
    ],
    "ConcatParameter": [(OPT, "int32", "axis", 2, "1"), (OPT, "uint32", "concat_dim", 1, "1")],
    "ConvolutionParameter": [
        (OPT, "uint32", "num_output", 1, None), (OPT, "bool", "bias_term", 2, "true"),
        (REP, "uint32", "pad", 3, None), (REP, "uint32", "kernel_size", 4, None), (REP, "uint32", "stride", 6, None),
        (REP, "uint32", "dilation", 18, None), (OPT, "uint32", "pad_h", 9, "0"), (OPT, "uint32", "pad_w", 10, "0"),
        (OPT, "uint32", "kernel_h", 11, None), (OPT, "uint32", "kernel_w", 12, None),
        (OPT, "uint32", "stride_h", 13, None), (OPT, "uint32", "stride_w", 14, None),
        (OPT, "uint32", "group", 5, "1"), (OPT, "int32", "axis", 16, "1"),
    ],
    "DropoutParameter": [(OPT, "float", "dropout_ratio", 1, "0.5")],
    "EltwiseParameter": [(OPT, "EltwiseOp", "operation", 1, "SUM"), (REP, "float", "coeff", 2, None)],
    "InnerProductParameter": [(OPT, "uint32", "num_output", 1, None), (OPT, "bool", "bias_term", 2, "true"),
                              (OPT, "int32", "axis", 5, "1"), (OPT, "bool", "transpose", 6, "false")],
    "LRNParameter": [(OPT, "uint32", "local_size", 1, "5"), (OPT, "float", "alpha", 2, "1"),
                     (OPT, "float", "beta", 3, "0.75"), (OPT, "NormRegion", "norm_region", 4, "ACROSS_CHANNELS"),
                     (OPT, "float", "k", 5, "1")],
    "PoolingParameter": [
        (OPT, "PoolMethod", "pool", 1, "MAX"), (REP, "uint32", "pad", 4, None), (OPT, "uint32", "pad_h", 9, "0"),
        (OPT, "uint32", "pad_w", 10, "0"), (REP, "uint32", "kernel_size", 2, None),
        (OPT, "uint32", "kernel_h", 5, None), (OPT, "uint32", "kernel_w", 6, None),
        (REP, "uint32", "stride", 3, None), (OPT, "uint32", "stride_h", 7, None),
        (OPT, "uint32", "stride_w", 8, None), (OPT, "bool", "global_pooling", 12, "false"),
    ],
    "ReLUParameter": [(OPT, "float", "negative_slope", 1, "0")],
    "SoftmaxParameter": [(OPT, "int32", "axis", 2, "1")],
    "PythonParameter": [(OPT, "string", "module", 1, None), (OPT, "string", "layer", 2, None)],
    "FlattenParameter": [(OPT, "int32", "axis", 1, "1"), (OPT, "int32", "end_axis", 2, "-1")],
    "BatchNormParameter": [(OPT, "bool", "use_global_stats", 1, None), (OPT, "float", "eps", 3, "1e-5")],
    "ScaleParameter": [(OPT, "int32", "axis", 1, "1"), (OPT, "int32", "num_axes", 2, "1"),
                       (OPT, "bool", "bias_term", 4, "false")],
    "BiasParameter": [(OPT, "int32", "axis", 1, "1"), (OPT, "int32", "num_axes", 2, "1")],
    "ArgMaxParameter": [(OPT, "bool", "out_max_val", 1, "false"), (OPT, "uint32", "top_k", 2, "1"),
                        (OPT, "int32", "axis", 3, None)],
    "PermuteParameter": [(REP, "uint32", "order", 1, None)],
    "InputParameter": [(REP, "BlobShape", "shape", 1, None)],
    "ExpParameter": [(OPT, "float", "base", 1, "-1"), (OPT, "float", "scale", 2, "1"), (OPT, "float", "shift", 3, "0")],
    "LogParameter": [(OPT, "float", "base", 1, "-1"), (OPT, "float", "scale", 2, "1"), (OPT, "float", "shift", 3, "0")],
    "PowerParameter": [(OPT, "float", "power", 1, "1"), (OPT, "float", "scale", 2, "1"), (OPT, "float", "shift", 3, "0")],
    "PReLUParameter": [(OPT, "bool", "channel_shared", 2, "false")],
    "ReshapeParameter": [(OPT, "BlobShape", "shape", 1, None), (OPT, "int32", "axis", 2, "0"),
                         (OPT, "int32", "num_axes", 3, "-1")],
    "ELUParameter": [(OPT, "float", "alpha", 1, "1")],
    "SliceParameter": [(OPT, "int32", "axis", 3, "1"), (REP, "uint32", "slice_point", 2, None),
                       (OPT, "uint32", "slice_dim", 1, "1")],
    "CropParameter": [(OPT, "int32", "axis", 1, "2"), (REP, "uint32", "offset", 2, None)],
}

ENUMS = {
    "Phase": [("TRAIN", 0), ("TEST", 1)],
    "EltwiseOp": [("PROD", 0), ("SUM", 1), ("MAX", 2)],
    "NormRegion": [("ACROSS_CHANNELS", 0), ("WITHIN_CHANNEL", 1)],
    "PoolMethod": [("MAX", 0), ("AVE", 1), ("STOCHASTIC", 2)],
    "V1LayerType": [("NONE", 0), ("ABSVAL", 35), ("ACCURACY", 1), ("ARGMAX", 30), ("BNLL", 2), ("CONCAT", 3),
                    ("CONTRASTIVE_LOSS", 37), ("CONVOLUTION", 4), ("DATA", 5), ("DECONVOLUTION", 39),
                    ("DROPOUT", 6), ("DUMMY_DATA", 32), ("EUCLIDEAN_LOSS", 7), ("ELTWISE", 25), ("EXP", 38),
                    ("FLATTEN", 8), ("HDF5_DATA", 9), ("HDF5_OUTPUT", 10), ("HINGE_LOSS", 28), ("IM2COL", 11),
                    ("IMAGE_DATA", 12), ("INFOGAIN_LOSS", 13), ("INNER_PRODUCT", 14), ("LRN", 15),
                    ("MEMORY_DATA", 29), ("MULTINOMIAL_LOGISTIC_LOSS", 16), ("MVN", 34), ("POOLING", 17),
                    ("POWER", 26), ("RELU", 18), ("SIGMOID", 19), ("SIGMOID_CROSS_ENTROPY_LOSS", 27),
                    ("SILENCE", 36), ("SOFTMAX", 20), ("SOFTMAX_LOSS", 21), ("SPLIT", 22), ("SLICE", 33),
                    ("TANH", 23), ("WINDOW_DATA", 24), ("THRESHOLD", 31)],
}

# enum -> the message it is nested in (enum values are scoped there, as in caffe.proto)
ENUM_OWNER = {"EltwiseOp": "EltwiseParameter", "NormRegion": "LRNParameter", "PoolMethod": "PoolingParameter",
              "V1LayerType": "V1LayerParameter"}

# V1 enum -> the V2 type string
V1_TYPES = {"CONVOLUTION": "Convolution", "POOLING": "Pooling", "INNER_PRODUCT": "InnerProduct",
            "RELU": "ReLU", "LRN": "LRN", "DROPOUT": "Dropout", "SOFTMAX": "Softmax", "CONCAT": "Concat",
            "ELTWISE": "Eltwise", "FLATTEN": "Flatten", "SIGMOID": "Sigmoid", "TANH": "TanH",
            "SPLIT": "Split", "DATA": "Data", "ACCURACY": "Accuracy", "SOFTMAX_LOSS": "SoftmaxWithLoss",
            "DECONVOLUTION": "Deconvolution", "ABSVAL": "AbsVal", "BNLL": "BNLL", "POWER": "Power",
            "EXP": "Exp", "SLICE": "Slice", "ARGMAX": "ArgMax", "THRESHOLD": "Threshold", "MVN": "MVN",
            "SILENCE": "Silence"}


def _build():
    fd = descriptor_pb2.FileDescriptorProto(name="irbridge_caffe.proto", package="caffe", syntax="proto2")
    messages = {name: fd.message_type.add(name=name) for name in MESSAGES}
    for name, values in ENUMS.items():
        owner = ENUM_OWNER.get(name)
        e = (messages[owner].enum_type if owner else fd.enum_type).add(name=name)
        for v, n in values:
            e.value.add(name=v, number=n)
    for name, fields in MESSAGES.items():
        m = messages[name]
        for label, typ, fname, number, default in fields:
            f = m.field.add(name=fname, number=number, label=label)
            if typ in T:
                f.type = T[typ]
                if label == REP and typ not in ("string", "bytes"):
                    f.options.packed = fname in ("data", "double_data", "dim")
            elif typ in ENUMS:
                owner = ENUM_OWNER.get(typ)
                f.type, f.type_name = F.TYPE_ENUM, f".caffe.{owner + '.' if owner else ''}{typ}"
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".caffe.{typ}"
            if default is not None:
                f.default_value = default
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in MESSAGES}


CLASSES = _build()
NetParameter = CLASSES["NetParameter"]
