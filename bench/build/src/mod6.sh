#!/bin/sh
# module 6
echo "module 6"
