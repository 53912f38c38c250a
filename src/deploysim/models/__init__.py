"""deploysim.models"""
