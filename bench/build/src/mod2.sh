#!/bin/sh
# module 2
echo "module 2"
