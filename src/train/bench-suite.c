/* convoy bench --suite: the layer shapes users bring beside launch/models/, each a small model
 * file whose time goes mostly to the shape it is named for. */
#include "convoy/bench.h"

#define COMPILE "compile optimizer=adam learning_rate=0.001 loss=sparse_categorical_crossentropy metrics=accuracy\n"

const cv_bench_shape cv_bench_shapes[] = {
    {"tf-convnet", "TensorFlow tutorial convnet: 5x5 same convs (32, 64), dense 3136->1024",
     "input shape=28,28,1\n"
     "conv2d filters=32 kernel=5 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "conv2d filters=64 kernel=5 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "flatten\n"
     "dense units=1024 activation=relu\n"
     "dropout rate=0.4\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=64\n"},
    {"conv5x5", "5x5 same convs, 32->64->64 channels on 32x32",
     "input shape=32,32,32\n"
     "conv2d filters=64 kernel=5 padding=same activation=relu\n"
     "conv2d filters=64 kernel=5 padding=same activation=relu\n"
     "globalavgpool2d\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=64\n"},
    {"conv7x7-stem", "ResNet stem: 7x7 stride-2 conv, 3->64 channels on 64x64",
     "input shape=64,64,3\n"
     "conv2d filters=64 kernel=7 stride=2 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "conv2d filters=64 kernel=3 padding=same activation=relu\n"
     "globalavgpool2d\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=32\n"},
    {"conv1x1", "1x1 convs (pointwise), 64->128->64->128 channels on 16x16",
     "input shape=16,16,64\n"
     "conv2d filters=128 kernel=1 activation=relu\n"
     "conv2d filters=64 kernel=1 activation=relu\n"
     "conv2d filters=128 kernel=1 activation=relu\n"
     "globalavgpool2d\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=64\n"},
    {"strided3x3", "3x3 stride-2 same convs, 32->64->128 channels from 32x32",
     "input shape=32,32,32\n"
     "conv2d filters=64 kernel=3 stride=2 padding=same activation=relu\n"
     "conv2d filters=128 kernel=3 stride=2 padding=same activation=relu\n"
     "globalavgpool2d\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=64\n"},
    {"vgg3x3", "VGG-style 3x3 same convs (32, 64, 128), no batchnorm, on 32x32x3",
     "input shape=32,32,3\n"
     "conv2d filters=32 kernel=3 padding=same activation=relu\n"
     "conv2d filters=32 kernel=3 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "conv2d filters=64 kernel=3 padding=same activation=relu\n"
     "conv2d filters=64 kernel=3 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "conv2d filters=128 kernel=3 padding=same activation=relu\n"
     "conv2d filters=128 kernel=3 padding=same activation=relu\n"
     "maxpool2d pool=2\n"
     "flatten\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=64\n"},
    {"dense-wide", "wide dense layers: 784->2048->1024->10",
     "input shape=28,28,1\n"
     "flatten\n"
     "dense units=2048 activation=relu\n"
     "dense units=1024 activation=relu\n"
     "dense units=10 activation=softmax\n" COMPILE "fit batch_size=128\n"},
};
const int cv_bench_n_shapes = (int)(sizeof cv_bench_shapes / sizeof cv_bench_shapes[0]);
